// captured_step.ts: one training step as one lazy graph (the micro-batches' forward and backward with
// their gradients summed, the global gradient norm, clipping, and the optimizer's in-place update of
// the parameters and its state, one flat buffer each), and how it is run: captured once with jit and replayed for later steps
// (only the kernel launches: no graph building, scheduling or lowering), or built and realized each step
// (`jit: false`, the reference a test compares the replay with). Eval's forward is replayed the same way.
// The step reads and writes persistent buffers only (Tensor.assign), so a replay needs no new tensors;
// its per-step inputs are the batches' token ids and the optimizer's scalars (lr, bias corrections).
// Mixed precision's decisions are part of the graph too (StepPrecision): fp16's loss scale and its skip of
// an overflowed step (every assignment keeps the old value where the guard is false), fp8's scales.
// With a gradient hook (Trainer's gradientHook: data parallel's all-reduce) the step is two graphs instead,
// gradientGraph (forward, backward, the flat gradient) and gradientUpdateGraph (clip, update), the hook
// running on the host between them.
// NOTE: a capture binds the parameter and state tensors it saw. Anything that replaces them (Trainer.loadState,
// Module.loadStateDict) makes the capture stale; Replayed notices (identity of those tensors) and captures again.

import type { Tensor } from "../index.js";
import { gradients, jit, noGrad, realizeAll } from "../index.js";
import type { JitFunction } from "../index.js";
import { clipByGlobalNorm, globalNorm } from "./clip.js";
import { flatGradient } from "./flat_params.js";
import type { TrainableModel } from "./loss.js";
import { trainingLoss } from "./loss.js";
import type { ParamLayout } from "./param_layout.js";

/**
 * The global norm of a flat gradient laid out as `slots` (a scalar tensor, part of the step's graph): for a
 * model whose parameters are cut over ranks, where the norm sums the split parameters' squares over the ranks
 * and counts the replicated ones once (tensor parallel), or adds every rank's experts (expert parallel).
 */
export type GradNormFn = (flatGrad: Tensor, slots: readonly { readonly name: string; readonly offset: number; readonly numel: number }[]) => Tensor;

/** What the step needs of an optimizer (AdamW; SGD follows it): see the contract in optim/adamw.ts. */
export interface StepOptimizer {
  scalars(lr: number): Float32Array;
  update(params: Tensor, grads: Tensor, scalars: Tensor, guard?: Tensor): Tensor[];
  advance(): void;
  stateTensors(): readonly Tensor[];
}

/** What the step needs of a precision policy (precision/mixed_precision.ts): all of it lazy graph, no host decision. */
export interface StepPrecision {
  /** Builds a micro-batch's forward (autocast; `training` records fp8 amaxes). */
  forward<T>(fn: () => T, training: boolean): T;
  /** What the backward of a loss weighted `weight` starts from (fp16: times the loss scale). */
  lossSeed(loss: Tensor, weight: number): Tensor;
  /** The gradients of the unscaled loss. */
  unscale(grads: readonly Tensor[]): Tensor[];
  /** A bool scalar: whether the update applies (fp16: the gradients are finite); undefined: always. */
  guard(gradNorm: Tensor): Tensor | undefined;
  /** The precision's own state assignments (loss scale, fp8 scales), after the step's forwards are built. */
  updates(guard: Tensor | undefined): Tensor[];
}

export interface StepGraphOptions {
  readonly model: TrainableModel;
  /** The trained parameters in the optimizer's slot order: views of `flat` (flat_params.ts slotViews). */
  readonly params: readonly Tensor[];
  /** The flat buffer (layout.size,) the parameters are views of: the optimizer writes it in place. */
  readonly flat: Tensor;
  readonly layout: ParamLayout;
  readonly optimizer: StepOptimizer;
  readonly maxGradNorm?: number;
  /** Mixed precision (precision/); default: fp32 as is. */
  readonly precision?: StepPrecision;
  /**
   * A graph function of the flat gradient (unscaled, summed over micro-batches) applied before the norm and
   * the update, inside the step's one graph: data parallel's all-reduce mean as a collective node (Trainer's
   * reduceGradient). Absent: the gradient as it is.
   */
  readonly reduceGradient?: (flatGrad: Tensor) => Tensor;
  /** The global norm of the flat gradient (TrainerOptions.gradientNorm); default sqrt of its sum of squares. */
  readonly gradientNorm?: GradNormFn;
  /** Names what the step computes for memory accounting (memory/training_memory.ts tagStep). */
  readonly tag?: (parts: { parameters: readonly Tensor[]; gradients: readonly Tensor[] }) => void;
}

/**
 * The step's graph from its inputs: (inputs, targets) i32 (B, T) per micro-batch, then the optimizer's
 * scalars. Returns the mean loss, the global gradient norm (before clipping), then the assignments.
 */
export function stepGraph(o: StepGraphOptions, inputs: readonly Tensor[]): Tensor[] {
  const micro = (inputs.length - 1) / 2;
  if (!(Number.isInteger(micro) && micro > 0)) throw new Error(`stepGraph: expected (inputs, targets) per micro-batch and the scalars, got ${inputs.length} tensors`);
  const { grads, lossSum } = microBatches(o, inputs, micro);
  return stepUpdate(o, grads, lossSum, micro, inputs[inputs.length - 1]!);
}

/**
 * The first part of a step split around a gradient hook (Trainer's gradientHook): from (inputs, targets)
 * per micro-batch, the mean loss and the flat gradient (summed over the micro-batches, unscaled). The same
 * graph as stepGraph up to the flat gradient; gradientUpdateGraph is the rest.
 */
export function gradientGraph(o: StepGraphOptions, inputs: readonly Tensor[]): Tensor[] {
  const micro = inputs.length / 2;
  if (!(Number.isInteger(micro) && micro > 0)) throw new Error(`gradientGraph: expected (inputs, targets) per micro-batch, got ${inputs.length} tensors`);
  const { grads, lossSum } = microBatches(o, inputs, micro);
  return noGrad(() => {
    const unscaled = o.precision ? o.precision.unscale(grads) : [...grads];
    return [lossSum.div(micro), flatGradient(o.layout, unscaled)];
  });
}

/**
 * The second part of a split step: from a flat gradient (layout.size,), the optimizer's scalars and
 * optionally the global norm (a scalar: Trainer's hostGradientNorm, when other ranks hold gradients too), [norm, ...writes].
 */
export function gradientUpdateGraph(o: StepGraphOptions, [flatGrad, scalars, norm]: readonly Tensor[]): Tensor[] {
  if (!flatGrad || !scalars) throw new Error("gradientUpdateGraph: expected the flat gradient and the optimizer's scalars");
  return noGrad(() => applyFlatGradient(o, flatGrad, scalars, norm));
}

/** Each micro-batch's forward and backward, the gradients and losses summed. */
function microBatches(o: StepGraphOptions, inputs: readonly Tensor[], micro: number): { grads: Tensor[]; lossSum: Tensor } {
  const { model } = o;
  let grads: Tensor[] | undefined;
  let lossSum: Tensor | undefined;
  for (let k = 0; k < micro; k++) {
    const build = () => trainingLoss(model, inputs[2 * k]!, inputs[2 * k + 1]!);
    const loss = o.precision ? o.precision.forward(build, true) : build();
    const g = microGradients(o, loss, micro);
    grads = grads ? grads.map((x, i) => x.add(g[i]!)) : g;
    lossSum = lossSum ? lossSum.add(loss.detach()) : loss.detach();
  }
  return { grads: grads!, lossSum: lossSum! };
}

/** One micro-batch's gradients of the parameters (weighted 1 / micro; fp16: still times the loss scale). */
export function microGradients(o: StepGraphOptions, loss: Tensor, micro: number): Tensor[] {
  const seed = o.precision ? o.precision.lossSeed(loss, 1 / micro) : loss.full([], 1 / micro);
  return gradients([loss], o.params, [seed]).map((x, i) => x ?? o.params[i]!.full(o.params[i]!.shape, 0));
}

/**
 * The rest of the step from the summed gradients: unscale, global norm, clipping, the optimizer's
 * assignments (kept back by the precision's guard) and the precision's own. Returns [mean loss, norm, ...writes].
 */
export function stepUpdate(o: StepGraphOptions, grads: readonly Tensor[], lossSum: Tensor, micro: number, scalars: Tensor): Tensor[] {
  return noGrad(() => {
    const unscaled = o.precision ? o.precision.unscale(grads) : [...grads];
    // NOTE: the norm of the flat gradient: one reduction, not one per parameter and a sum of them.
    const local = flatGradient(o.layout, unscaled);
    const flatGrad = o.reduceGradient ? o.reduceGradient(local) : local;
    const [norm, ...writes] = applyFlatGradient(o, flatGrad, scalars);
    return [lossSum.div(micro), norm!, ...writes];
  });
}

/** From the flat gradient: the global norm, clipping, the optimizer's assignments (kept back by the guard) and the precision's own. */
function applyFlatGradient(o: StepGraphOptions, flatGrad: Tensor, scalars: Tensor, given?: Tensor): Tensor[] {
  const norm = given ?? (o.gradientNorm ? o.gradientNorm(flatGrad, o.layout.slots) : globalNorm([flatGrad]));
  const clipped = o.maxGradNorm ? clipByGlobalNorm([flatGrad], norm, o.maxGradNorm)[0]! : flatGrad;
  o.tag?.({ parameters: [o.flat], gradients: [flatGrad] });
  const guard = o.precision?.guard(norm);
  const writes = o.optimizer.update(o.flat, clipped, scalars, guard);
  return [norm, ...writes, ...(o.precision?.updates(guard) ?? [])];
}

/**
 * A function of tensors run either as a jit (captured on the first call, replayed after) or built and
 * realized on every call. `persistent` lists the tensors a capture binds besides its inputs; when one is
 * replaced the capture is dropped and the next call captures again. Returns `keep` outputs, realized;
 * with jit they are the jit's own buffers, overwritten by the next call: read them first.
 */
export class Replayed {
  private fn: JitFunction<Tensor[]> | undefined;
  private bound: readonly Tensor[] = [];

  constructor(
    private readonly build: (inputs: Tensor[]) => Tensor[],
    private readonly persistent: () => readonly Tensor[],
    private readonly useJit: boolean,
    private readonly keep: number,
  ) {}

  async run(inputs: Tensor[]): Promise<Tensor[]> {
    if (!this.useJit) {
      const outs = this.build(inputs);
      await realizeAll(outs);
      return outs.slice(0, this.keep);
    }
    const now = this.persistent();
    if (this.fn && (now.length !== this.bound.length || now.some((t, i) => t !== this.bound[i]))) this.dispose();
    if (this.fn) return (await this.fn(...inputs)).slice(0, this.keep);
    this.fn = jit((...xs: Tensor[]) => this.build(xs));
    const outs = await this.fn(...inputs);
    // NOTE: read after the capture: a step may make persistent state as it builds (fp8's sites), which it binds.
    this.bound = this.persistent();
    return outs.slice(0, this.keep);
  }

  /** Launches per replay (0 before the first captured call, or without jit). */
  get launches(): number {
    return this.fn?.launches ?? 0;
  }

  dispose(): void {
    this.fn?.dispose();
    this.fn = undefined;
    this.bound = [];
  }
}
