// train_parallel_modes.ts: the seams (src/train's RunParallel) one rank of `kiln train` runs with for its
// config's layout, over the job's communicator: data parallel (each rank its rows of the global batch, the
// gradient all-reduced), ZeRO-1/2 over the data-parallel ranks (the trainer's optimizer sharding, and a
// distributed checkpoint every rank writes its part of), tensor parallel (each rank its slices of the single
// run's model, the vocab-parallel loss, the norm summed over the slices) and expert parallel (each rank its
// share of a MoE model's experts, tokens exchanged by all-to-all, the gradient reduced inside the step's graph)
// and pipeline parallel (each rank one stage of the single run's model, its micro-batches in 1F1B order, the
// held-out loss through the stages), data parallel beside them on a (pp, dp, tp, ep) device mesh. Which layouts are refused, and why, is train_parallel.ts's notYetParallel.

import type { Communicator } from "../dist/index.js";
import { agreeOnConfig, dataParallel, deviceMesh, expertParallelFromWhole, expertParallelTraining, MicroRows, replicaStart, zero3Sharding, zeroSharding } from "../dist/index.js";
import type { ParallelLayout, RunParallel } from "../train/index.js";
import { describeParallel, deviceLayout, pipelineMicroBatches } from "../train/index.js";
import { denseParallel } from "./train_parallel_dense.js";

/** A run's layout (checked, and not refused by notYetParallel), the config's name for errors, and its batch shape. */
export interface LayoutPlan {
  readonly layout: ParallelLayout;
  readonly source: string;
  readonly run: { readonly batchSize: number; readonly blockSize: number; readonly gradAccumSteps: number };
}

/** The RunParallel of `plan`'s layout on `world` (every rank calls it alike: the mesh's groups are made here). */
export function layoutParallel(world: Communicator, plan: LayoutPlan): RunParallel {
  const { layout, source, run } = plan;
  const { dp: dpSize, tp: tpSize, pp: ppSize, ep: epSize, zero } = layout;
  const mesh = deviceMesh(world, { dp: dpSize, tp: tpSize, pp: ppSize, ep: epSize });
  const dp = dataParallel(mesh.dp);
  const micro = pipelineMicroBatches(layout);
  let trainer: NonNullable<RunParallel["trainer"]> =
    zero === 1 || zero === 2 ? { sharding: zeroSharding(mesh.dp, zero) } : zero === 3 ? { sharding: zero3Sharding(mesh.dp) } : {};
  const layoutText = describeParallel(layout);
  let wholeState: RunParallel["wholeState"];
  let evalStage: ((batch: { inputs: Int32Array; targets: Int32Array }, b: number, t: number) => Promise<number>) | undefined;
  return {
    ...(tpSize > 1 || ppSize > 1
      ? {
          async model(whole) {
            const d = await denseParallel(whole, { mesh, layout, source, trainer, micro, run });
            [trainer, wholeState, evalStage] = [d.trainer, d.wholeState, d.evalStage];
            return d.model;
          },
          ...(ppSize > 1
            ? {
                async evalLoss(data, i) {
                  return evalStage!(await data.batch(i, 0), data.batchSize, data.blockSize);
                },
              }
            : {}),
        }
        : epSize > 1
        ? {
            async model(whole) {
              const backend = [...whole.parameters().values()][0]!.backend;
              const m = await expertParallelFromWhole(whole, backend, mesh.ep, mesh.dp).catch((err: Error) => {
                throw new Error(`${source}: parallel.ep ${epSize}: ${err.message}`, { cause: err });
              });
              // NOTE: the trainer lays the parameters out the same way (deviceLayout): the experts' offsets agree.
              const l = deviceLayout(m.parameters(), backend);
              const e = expertParallelTraining({ dp: mesh.dp, ep: mesh.ep }, l.slots, l.size);
              trainer = { reduceGradient: e.reduceGradient, gradientNorm: e.gradientNorm };
              return m;
            },
          }
        : {}),
    async prepare(model, config) {
      // Every rank runs the same config and layout; the replicas of one slice start from its dp rank 0's values.
      await agreeOnConfig(world, `kiln train (${layoutText})`, JSON.stringify({ config, layout }));
      // NOTE: expert parallel's dp ranks hold different experts: nothing to broadcast (each cut its share of the same init).
      if (mesh.dp.size > 1 && epSize === 1) await replicaStart(mesh.dp, model, config);
    },
    batches: (global) => {
      const mine = mesh.dp.size > 1 ? dp.rows(global) : global;
      return ppSize > 1 ? new MicroRows(mine, micro) : mine;
    },
    // NOTE: ZeRO's sharding and expert parallel's reduceGradient reduce the gradient themselves (the trainer refuses a hook beside them).
    ...(mesh.dp.size > 1 && !zero && epSize === 1 ? { gradientHook: dp.gradientHook } : {}),
    get trainer() {
      return trainer;
    },
    // NOTE: the tp ranks of a replica report the same loss (the vocab-parallel loss is the whole batch's); the mean
    // is over the replicas, summed in rank order and divided once: the single process's up to f32 order.
    meanLoss: async (loss) => (mesh.dp.size > 1 ? (await mesh.dp.allReduce(Float32Array.of(loss)))[0]! / mesh.dp.size : loss),
    writes: world.rank === 0,
    // NOTE: ZeRO's distributed checkpoint splits one flat layout over the world; with tp or pp the ranks' layouts
    // differ, so those runs write the single process's form (wholeState: dp parts, tp slices, stages gathered).
    ...(zero && tpSize === 1 && ppSize === 1 ? { checkpointGroup: world } : {}),
    get wholeState() {
      return wholeState;
    },
    async started(step) {
      const steps = await world.allGather(Float32Array.of(step));
      const differ = [...steps.keys()].filter((i) => steps[i] !== steps[0]);
      if (differ.length) {
        throw new Error(`rank ${world.rank}: the ranks start at different steps (${[...steps].map((s, i) => `rank ${i}: ${s}`).join(", ")}); did they read different checkpoint.dirs?`);
      }
    },
  };
}
