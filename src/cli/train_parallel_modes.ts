// train_parallel_modes.ts: the seams (src/train's RunParallel) one rank of `kiln train` runs with for its
// config's layout, over the job's communicator: data parallel (each rank its rows of the global batch, the
// gradient all-reduced), ZeRO-1/2 over the data-parallel ranks (the trainer's optimizer sharding, and a
// distributed checkpoint every rank writes its part of), tensor parallel (each rank its slices of the single
// run's model, the vocab-parallel loss, the norm summed over the slices) and expert parallel (each rank its
// share of a MoE model's experts, tokens exchanged by all-to-all, the gradient reduced inside the step's graph)
// and pipeline parallel (each rank one stage of the single run's model, its micro-batches in 1F1B order, the
// held-out loss through the stages), data parallel beside them on a (pp, dp, tp, ep) device mesh. Which layouts are refused, and why, is train_parallel.ts's notYetParallel.

import type { Communicator, PipelineModel } from "../dist/index.js";
import {
  agreeOnConfig, dataParallel, deviceMesh, expertParallelFromWhole, expertParallelTraining, MicroRows, partArrays, pipelineEvalLoss, pipelineParallel, pipelinePartArrays, pipelinePartition,
  pipelineWholeArrays, PipelineStage, pieceCount, replicaStart, tensorParallelFromWhole, tensorParallelGradNorm, wholeArrays, zero3Sharding, zeroSharding,
} from "../dist/index.js";
import type { ParallelLayout, RunParallel, TrainState } from "../train/index.js";
import { describeParallel, deviceLayout, pipelineMicroBatches } from "../train/index.js";

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
    ...(tpSize > 1
      ? {
          async model(whole) {
            const backend = [...whole.parameters().values()][0]!.backend;
            // NOTE: the single run's flat layout, read before the whole model's tensors go: its checkpoints' layout.
            const wholeLayout = deviceLayout(whole.parameters(), backend).describe();
            const m = await tensorParallelFromWhole(whole as Parameters<typeof tensorParallelFromWhole>[0], backend, mesh.tp).catch((err: Error) => {
              throw new Error(`${source}: parallel.tp ${tpSize}: ${err.message}`, { cause: err });
            });
            trainer = { ...trainer, gradientNorm: tensorParallelGradNorm(m) };
            const local = deviceLayout(m.parameters(), backend).describe();
            wholeState = {
              layout: wholeLayout,
              gather: async (s) => withArrays(s, wholeLayout, await wholeArrays(m, s.layout, wholeLayout, arraysOf(s))),
              part: (w) => withArrays(w, local, partArrays(m, w.layout, local, arraysOf(w))),
            };
            return m;
          },
        }
      : ppSize > 1
        ? {
            async model(whole) {
              // NOTE: with several replicas every pipeline must cut the model alike (their gradients are averaged
              // stage by stage): an even cut then; one pipeline cuts by its measured piece costs.
              const model = pipelineModel(whole, source);
              const backend = [...whole.parameters().values()][0]!.backend;
              const wholeLayout = deviceLayout(whole.parameters(), backend).describe();
              const pieces = pieceCount(model);
              const partition = dpSize > 1 ? pipelinePartition(Array<number>(pieces).fill(1), ppSize) : "measure";
              const pp = await pipelineParallel(mesh.pp, model, { batchSize: run.batchSize / dpSize / micro, blockSize: run.blockSize, partition, config: { layout, run } });
              trainer = { gradientSource: pp.gradientSource, hostGradientNorm: pp.hostGradientNorm, gradAccumSteps: run.gradAccumSteps * micro };
              // NOTE: the other stages' weights were needed to time every piece; from here on only this stage's are read.
              const mine = new Set(pp.stage.parameters().values());
              // Checkpoints in the single process's form: every stage's layout (shapes only: read before the weights go).
              const stages = pp.ranges.map((r) => deviceLayout(new PipelineStage(model, r).parameters(), backend).describe());
              const local = stages[mesh.pp.rank]!;
              wholeState = {
                layout: wholeLayout,
                gather: async (s) => withArrays(s, wholeLayout, await pipelineWholeArrays(mesh.pp, stages, wholeLayout, arraysOf(s))),
                part: (w) => withArrays(w, local, pipelinePartArrays(w.layout, local, arraysOf(w))),
              };
              for (const t of new Set(model.parameters().values())) if (!mine.has(t)) t.dispose();
              evalStage = (batch, b, t) => pipelineEvalLoss(mesh.pp, model, pp.stage, batch, b, t);
              return pp.stage;
            },
            async evalLoss(data, i) {
              return evalStage!(await data.batch(i, 0), data.batchSize, data.blockSize);
            },
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
    ...(zero ? { checkpointGroup: world } : {}),
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

/** The whole model as pipeline pieces (models/training_pieces.ts: GPT-2 and Llama have them). */
function pipelineModel(whole: object, source: string): PipelineModel {
  if (!("trainingPieces" in whole && "pieceParameters" in whole)) throw new Error(`${source}: parallel.pp: the model has no pipeline pieces (trainingPieces)`);
  return whole as PipelineModel;
}

/** A state's flat arrays: the parameters, then the optimizer's (AdamW's m and v, or SGD's momentum). */
function arraysOf(s: TrainState): Float32Array[] {
  const o = s.optimizer;
  return [s.params, ...(o.kind === "adamw" ? [o.m, o.v] : [o.momentum])];
}

/** `s` with its flat arrays (arraysOf's order) replaced, laid out as `layout`. */
function withArrays(s: TrainState, layout: TrainState["layout"], [params, ...opt]: Float32Array[]): TrainState {
  const o = s.optimizer;
  const optimizer = o.kind === "adamw" ? { ...o, m: opt[0]!, v: opt[1]! } : { ...o, momentum: opt[0]! };
  return { ...s, layout, params: params!, optimizer };
}
