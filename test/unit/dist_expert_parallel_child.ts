// dist_expert_parallel_child.ts: one expert-parallel rank for dist_expert_parallel.test.ts, a real OS process
// under torchrun's variables. It initializes the whole model of dist_expert_parallel_setup.ts (seed EP_SEED,
// as the single-process run does), keeps its share of the experts (shardExperts), trains EP_STEPS steps on
// its rows of the global batch with tokens exchanged by all-to-all, and prints one JSON line: each step's
// loss and norm, and its final parameters by name. EP_EP < WORLD_SIZE: ep groups of EP_EP consecutive
// ranks inside the world's data parallel (the device mesh's layout).

import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { expertExchange, expertParallelTraining, expertShare, shardExperts } from "../../src/dist/expert_parallel.js";
import { deviceLayout } from "../../src/train/flat_params.js";
import { Trainer } from "../../src/train/trainer.js";
import { EXPERTS, MOE_TRAINER, moeRun } from "./dist_expert_parallel_setup.js";

setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 100 s; exiting`);
  process.exit(124);
}, 100_000).unref();
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const comm = await createCommunicatorFromEnv({ timeoutMs: 30_000 });
try {
  const cpu = await getBackend("cpu");
  const whole = await moeRun(cpu, num("EP_SEED", 4));
  const epSize = num("EP_EP", comm.size);
  const first = comm.rank - (comm.rank % epSize);
  const epComm = epSize === comm.size ? comm : comm.group(Array.from({ length: epSize }, (_, i) => first + i));
  const exchange = expertExchange(epComm, EXPERTS, comm);
  const { model, global } = await moeRun(cpu, 0, { experts: () => exchange });
  model.loadStateDict(shardExperts(whole.model.parameters(), expertShare(EXPERTS, epComm.rank, epComm.size)));
  const layout = deviceLayout(model.parameters(), cpu);
  const ep = expertParallelTraining({ dp: comm, ep: epComm }, layout.slots, layout.size);
  const trainer = new Trainer(model, dataParallel(comm).rows(global), { ...MOE_TRAINER, ...ep });
  const losses: number[] = [];
  const norms: number[] = [];
  const stepMs: number[] = [];
  for (let i = 0; i < num("EP_STEPS", 50); i++) {
    const s = await trainer.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
    stepMs.push(s.ms);
  }
  const state = await trainer.state();
  const params = Object.fromEntries(layout.slots.map((s) => [s.name, Array.from(state.params.subarray(s.offset, s.offset + s.numel))]));
  console.log(JSON.stringify({ rank: comm.rank, losses, norms, stepMs, params, launches: trainer.stepLaunches }));
} finally {
  await comm.close();
}
