// checkpoint.ts: activation checkpointing as one primitive. checkpoint(fn, inputs) runs fn and
// records a single gradient context for its output whose backward runs fn again on the inputs
// (recompute) and differentiates that copy. So the forward's intermediates have no reader left after
// the forward, and the scheduler frees them there; only the inputs wait for the backward.
// It does not choose what to checkpoint (train/memory/ does, from the outside of a model).
//
// Two ordering edges (graph.ts `after`) make the recompute really lower the peak in a one-schedule
// step, where a depth-first order would otherwise compute a node wherever it first meets it:
//   - the recompute's inputs come after the gradient of the block's output, so the block is
//     recomputed when the backward reaches it, not early (all blocks' copies live at once);
//   - the gradient passed to the inputs comes after the gradients of the parameters the block read,
//     so the block's weight gradients are computed (and its recomputed activations freed) before the
//     backward moves on to the block below.

import { NO_ARG } from "../core/graph.js";
import { enableGrad, isGradEnabled } from "../tensor/context.js";
import { Tensor } from "../tensor/tensor.js";
import { gradients } from "./gradients.js";

/** Where a checkpointed block's inputs wait for the backward: kept on the device unless a saver moves them. */
export interface ActivationSaver {
  /** Take charge of an input at forward time; the returned function gives its value back at backward time. */
  save(input: Tensor): () => Tensor;
  /** The block's output, computed in the same pass (a saver that realizes the forward first needs it). */
  output?(output: Tensor): void;
}

export interface CheckpointOptions {
  readonly saver?: ActivationSaver;
}

/**
 * fn(...inputs), keeping only the inputs for the backward, which recomputes fn. fn must be a pure
 * function of its inputs and of tensors it closes over (parameters): it runs twice.
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: CheckpointOptions = {}): Tensor {
  if (inputs.length === 0) throw new Error("checkpoint: needs at least one input tensor (the recompute starts from them)");
  if (!isGradEnabled()) return fn(...inputs);
  // NOTE: node ids grow with creation: a tensor whose node is older than this probe came from outside fn.
  const firstId = inputs[0]!.full([], 0).node.id;
  const y = fn(...inputs);
  if (!y.requiresGrad || !y.ctx) return y;
  const captured = capturedLeaves(y, inputs, firstId);
  const restore = inputs.map((x) => (opts.saver && x.requiresGrad ? opts.saver.save(x) : () => x));
  opts.saver?.output?.(y);
  const out = new Tensor(y.node, true);
  const custom = (g: Tensor): (Tensor | undefined)[] => {
    const xs = inputs.map((x, i) => {
      const r = after(restore[i]!(), [g.node]);
      r.requiresGrad = x.requiresGrad;
      return r;
    });
    const again = enableGrad(() => fn(...xs));
    const gs = gradients([again], [...xs, ...captured], [g]);
    const paramGrads = gs.slice(xs.length).flatMap((t) => (t ? [t.node] : []));
    return [...gs.slice(0, xs.length).map((d) => d && after(d, paramGrads)), ...gs.slice(xs.length)];
  };
  // NOTE: op and arg are unused where `vjp` is set; "reshape" only keeps the context plain data.
  out.ctx = { op: "reshape", arg: NO_ARG, inputs: [...inputs, ...captured], vjp: custom };
  return out;
}

/** Tensors fn read from outside (parameters, mostly) that need a gradient: the leaves of its tape. */
function capturedLeaves(y: Tensor, inputs: readonly Tensor[], firstId: number): Tensor[] {
  const skip = new Set<Tensor>(inputs);
  const out: Tensor[] = [];
  const stack = [y];
  while (stack.length) {
    const t = stack.pop()!;
    for (const i of t.ctx?.inputs ?? []) {
      if (skip.has(i) || !i.requiresGrad) continue;
      skip.add(i);
      if (i.ctx && i.node.id > firstId) stack.push(i);
      else out.push(i);
    }
  }
  return out;
}

/** The same value as a new (view) node that the schedule computes only after `nodes`. */
function after(t: Tensor, nodes: Tensor["node"][]): Tensor {
  const view = Tensor.make("reshape", [t.detach()], NO_ARG, t.shape, t.dtype);
  view.node.after = nodes;
  return view;
}
