// tensor_parallel_child.ts: one rank for tensor_parallel.test.ts, a real OS process under torchrun's
// variables. It builds the whole model of tensor_parallel_setup.ts (every rank the same seed), cuts its rank's
// slices into a tensor-parallel model over the mesh's tp group (TP_SIZE; the rest of the world is data
// parallel), trains TP_STEPS steps with the vocab-parallel loss and tensor parallel's gradient norm (plus
// the dp gradient hook over mesh.dp), gathers the weights whole again and prints one JSON line: every
// step's loss and norm, and the whole parameters in the single-process model's order.
// TP_SP=1 turns on sequence parallel.

import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { deviceMesh } from "../../src/dist/mesh.js";
import { TpGpt2 } from "../../src/dist/tensor_parallel_gpt2.js";
import { TpLlama } from "../../src/dist/tensor_parallel_llama.js";
import { tensorParallelGradNorm } from "../../src/dist/tensor_parallel_norm.js";
import { gatherShards, loadShards } from "../../src/dist/tensor_parallel_shard.js";
import { Trainer } from "../../src/train/trainer.js";
import { GPT2, LLAMA, trainerOptions, wholeRun } from "./tensor_parallel_setup.js";

setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 90 s; exiting`);
  process.exit(124);
}, 90_000).unref();

const comm = await createCommunicatorFromEnv({ timeoutMs: 20_000 });
try {
  const backend = await getBackend("cpu");
  const arch = process.env.TP_ARCH === "llama" ? "llama" : "gpt2";
  const tpSize = Number(process.env.TP_SIZE ?? comm.size);
  const mesh = deviceMesh(comm, { dp: comm.size / tpSize, tp: tpSize, pp: 1, ep: 1 });
  const { model: whole, global } = await wholeRun(backend, arch);
  const opts = { tp: mesh.tp, sequenceParallel: process.env.TP_SP === "1" };
  const model = arch === "gpt2" ? new TpGpt2(GPT2, backend, opts) : new TpLlama(LLAMA, backend, opts);
  await loadShards(model, whole.parameters());
  const dp = dataParallel(mesh.dp);
  const trainer = new Trainer(model, mesh.dp.size > 1 ? dp.rows(global) : global, {
    ...trainerOptions(),
    gradientNorm: tensorParallelGradNorm(model),
    ...(mesh.dp.size > 1 ? { gradientHook: dp.gradientHook } : {}),
  });
  const losses: number[] = [];
  const norms: number[] = [];
  const stepMs: number[] = [];
  for (let i = 0; i < Number(process.env.TP_STEPS ?? 50); i++) {
    const s = await trainer.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
    stepMs.push(s.ms);
  }
  const gathered = await gatherShards(model);
  const params: number[] = [];
  for (const name of whole.parameters().keys()) params.push(...gathered.get(name)!.data);
  console.log(JSON.stringify({ rank: comm.rank, coords: mesh.coords, losses, norms, params, stepMs }));
} finally {
  await comm.close();
}
