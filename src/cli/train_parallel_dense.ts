// train_parallel_dense.ts: a dense model's tensor- and/or pipeline-parallel part for one rank of `kiln train`, with
// data parallel and ZeRO-1/2 beside them: the 4D layout dp x tp x pp (+ ZeRO) and each of its sub-layouts.
//   tp: the rank's slices of the single run's model (tensorParallelFromWhole);
//   pp: a stage of that model (the tp model's pieces when tp > 1: its head's loss is the vocab-parallel one), its
//       micro-batches in 1F1B order over the mesh's pipeline group;
//   the gradient norm: split slices summed over tp, replicated parameters once, a tied weight's second stage copy
//       left out, summed over the stages; with ZeRO the dp ranks' parts first (the sharded update's host norm);
//   checkpoints in the single process's form: ZeRO's optimizer parts all-gathered over dp, the slices over tp, the
//       stages over pp (each step of which is its own existing piece), rank 0 writes; on resume the inverse.
// Kept apart from train_parallel_modes.ts (which picks the mode) so each file says one thing.

import type { Communicator, DeviceMesh, FlatLayout, FlatSharding, PipelineModel, TpLanguageModel } from "../dist/index.js";
import {
  partArrays, pieceCount, pipelineEvalLoss, pipelineParallel, pipelinePartArrays, pipelinePartition, pipelineWholeArrays, PipelineStage, stageWholeLayout,
  tensorParallelFromWhole, tensorParallelGradNorm, tensorParallelHostNorm, wholeArrays,
} from "../dist/index.js";
import type { ParallelLayout, RunParallel, TrainableModel, TrainState } from "../train/index.js";
import { deviceLayout } from "../train/index.js";

type TrainerParts = NonNullable<RunParallel["trainer"]>;
type WholeState = NonNullable<RunParallel["wholeState"]>;
type Layout = TrainState["layout"];

/** dist's read-only layout as train's (the same plain data). */
const asLayout = (l: FlatLayout): Layout => l.map((s) => ({ name: s.name, shape: [...s.shape], offset: s.offset }));

export interface DenseParts {
  /** This rank's model: the tp slices, or its pipeline stage (of the tp slices when tp > 1). */
  readonly model: TrainableModel;
  /** The trainer options the layout adds to `trainer` (ZeRO's sharding kept). */
  readonly trainer: TrainerParts;
  readonly wholeState: WholeState;
  /** The held-out loss through the stages (pp > 1). */
  readonly evalStage?: (batch: { inputs: Int32Array; targets: Int32Array }, b: number, t: number) => Promise<number>;
}

/** Builds this rank's part of `whole` for a layout with tp > 1 or pp > 1 (every rank calls it alike). */
export async function denseParallel(
  whole: TrainableModel,
  o: { mesh: DeviceMesh; layout: ParallelLayout; source: string; trainer: TrainerParts; micro: number; run: { batchSize: number; blockSize: number; gradAccumSteps: number } },
): Promise<DenseParts> {
  const { mesh, layout, source, micro, run } = o;
  const backend = [...whole.parameters().values()][0]!.backend;
  // NOTE: the single run's flat layout, read before the whole model's tensors go: its checkpoints' layout.
  const wholeLayout = deviceLayout(whole.parameters(), backend).describe();
  const tpm = layout.tp > 1
    ? await tensorParallelFromWhole(whole as Parameters<typeof tensorParallelFromWhole>[0], backend, mesh.tp).catch((err: Error) => {
        throw new Error(`${source}: parallel.tp ${layout.tp}: ${err.message}`, { cause: err });
      })
    : undefined;
  const sharding = o.trainer.sharding as FlatSharding | undefined;
  if (layout.pp === 1) {
    const m = tpm!;
    const local = deviceLayout(m.parameters(), backend);
    // NOTE: ZeRO's update computes the norm on the host from its parts; without it the norm is a graph node.
    const trainer = sharding ? { ...o.trainer, hostGradientNorm: tensorParallelHostNorm(m) } : { ...o.trainer, gradientNorm: tensorParallelGradNorm(m) };
    return { model: m, trainer, wholeState: joined({ wholeLayout, stageWhole: wholeLayout, local: local.describe(), align: local.align, tpm, dp: mesh.dp, sharding }) };
  }
  const model = pipelineModel(tpm ?? whole, source);
  // NOTE: every pipeline must cut the model alike where stages are averaged over dp or run in step over tp (their
  // ranks time pieces apart): an even cut then; one lone pipeline cuts by its measured piece costs.
  const partition = layout.dp > 1 || layout.tp > 1 ? pipelinePartition(Array<number>(pieceCount(model)).fill(1), layout.pp) : "measure";
  const pp = await pipelineParallel(mesh.pp, model, { batchSize: run.batchSize / layout.dp / micro, blockSize: run.blockSize, partition, config: { layout, run } });
  const hostGradientNorm = tpm ? tensorParallelHostNorm(tpm, pp.hostGradientNorm) : pp.hostGradientNorm;
  const trainer = { ...o.trainer, gradientSource: pp.gradientSource, hostGradientNorm, gradAccumSteps: run.gradAccumSteps * micro };
  // NOTE: the other stages' weights were needed to time every piece; from here on only this stage's are read.
  const mine = new Set(pp.stage.parameters().values());
  const stageNames = pp.ranges.map((r) => new PipelineStage(model, r).names);
  const localLayout = deviceLayout(pp.stage.parameters(), backend);
  // Each stage's arrays in whole (un-sliced) shapes: its own layout without tp, else its slots of the whole layout.
  const stages = tpm
    ? stageNames.map((names) => asLayout(stageWholeLayout(wholeLayout, names)))
    : pp.ranges.map((r) => deviceLayout(new PipelineStage(model, r).parameters(), backend).describe());
  const stageWhole = stages[mesh.pp.rank]!;
  const base = joined({ wholeLayout: stageWhole, stageWhole, local: localLayout.describe(), align: localLayout.align, tpm, dp: mesh.dp, sharding });
  const wholeState: WholeState = {
    layout: wholeLayout,
    gather: async (s) => {
      const st = await base.gather(s);
      return withArrays(st, wholeLayout, await pipelineWholeArrays(mesh.pp, stages, wholeLayout, arraysOf(st)));
    },
    part: (w) => base.part(withArrays(w, stageWhole, pipelinePartArrays(w.layout, stageWhole, arraysOf(w)))),
  };
  for (const t of new Set(model.parameters().values())) if (!mine.has(t)) t.dispose();
  const evalStage = (batch: { inputs: Int32Array; targets: Int32Array }, b: number, t: number) => pipelineEvalLoss(mesh.pp, model, pp.stage, batch, b, t);
  return { model: pp.stage, trainer, wholeState, evalStage };
}

/**
 * This rank's state <-> the state of its (pp) stage in whole shapes (`stageWhole`; the whole model's with pp 1):
 * ZeRO's optimizer parts all-gathered over dp (a sharded trainer keeps its part only), then the tp slices joined.
 */
function joined(o: { wholeLayout: Layout; stageWhole: Layout; local: Layout; align: number; tpm: TpLanguageModel | undefined; dp: Communicator; sharding: FlatSharding | undefined }): WholeState {
  const { tpm, local, stageWhole, sharding } = o;
  return {
    layout: o.wholeLayout,
    gather: async (s) => {
      let arrays = arraysOf(s);
      const n = s.params.length;
      if (s.optimizerRange) {
        if (!sharding) throw new Error("kiln train: a sharded optimizer state without the run's sharding");
        const [params, ...opt] = arrays;
        arrays = [params!, ...(await Promise.all(opt.map((a) => (a.length ? sharding.gatherParameters(a, n, o.align) : a))))];
      }
      if (tpm) arrays = await wholeArrays(tpm, local, stageWhole, arrays);
      const { optimizerRange: _, ...rest } = s;
      return withArrays(rest, stageWhole, arrays);
    },
    // NOTE: the whole optimizer state goes to the trainer; a sharded one keeps its part of it (Trainer.loadState).
    part: (w) => (tpm ? withArrays(w, local, partArrays(tpm, stageWhole, local, arraysOf(w))) : withArrays(w, local, arraysOf(w))),
  };
}

/** The whole model as pipeline pieces (models/training_pieces.ts and the tensor-parallel models have them). */
function pipelineModel(whole: object, source: string): PipelineModel {
  if (!("trainingPieces" in whole && "pieceParameters" in whole)) throw new Error(`${source}: parallel.pp: the model has no pipeline pieces (trainingPieces)`);
  return whole as PipelineModel;
}

/** A state's flat arrays: the parameters, then the optimizer's (AdamW's m and v, or SGD's momentum). */
export function arraysOf(s: TrainState): Float32Array[] {
  const o = s.optimizer;
  return [s.params, ...(o.kind === "adamw" ? [o.m, o.v] : [o.momentum])];
}

/** `s` with its flat arrays (arraysOf's order) replaced, laid out as `layout`. */
export function withArrays(s: TrainState, layout: TrainState["layout"], [params, ...opt]: Float32Array[]): TrainState {
  const o = s.optimizer;
  const optimizer = o.kind === "adamw" ? { ...o, m: opt[0]!, v: opt[1]! } : { ...o, momentum: opt[0]! };
  return { ...s, layout, params: params!, optimizer };
}
