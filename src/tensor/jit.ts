// jit.ts (tensor level): `jit(fn)` runs fn once to capture its kernels' launches, then replays
// them for later calls with inputs of the same shapes and dtypes, without building or scheduling a graph.
// NOTE: outputs are the jit's own buffers, overwritten by the next call: read (or copy) them first.
// Values fn creates from host data are baked in; randomness drawn inside fn repeats on every replay.

import { CapturedStep } from "../core/jit.js";
import { Node } from "../core/graph.js";
import { realize } from "../core/realize.js";
import { Tensor } from "./tensor.js";

export interface JitFunction<A extends Tensor[]> {
  (...inputs: A): Promise<Tensor[]>;
  /** Launches per replay (0 before the first call). */
  readonly launches: number;
  dispose(): void;
}

export function jit<A extends Tensor[]>(fn: (...inputs: A) => Tensor | Tensor[]): JitFunction<A> {
  let step: CapturedStep | undefined;
  let signature = "";
  let outputs: Node[] = [];
  const sig = (ts: readonly Tensor[]) => ts.map((t) => `${t.dtype}(${t.shape.join(",")})@${t.backend.name}`).join(";");

  const call = async (...inputs: A): Promise<Tensor[]> => {
    await realize(inputs.map((t) => t.node));
    if (!step) {
      const result = fn(...inputs);
      const outs = Array.isArray(result) ? result : [result];
      const backend = (inputs[0] ?? outs[0])!.backend;
      step = new CapturedStep(backend);
      signature = sig(inputs);
      // Outputs that are inputs or already realized cannot be recomputed by replay: copy them.
      const fresh = outs.map((t) => (t.node.realized ? t.add(0) : t));
      await realize(fresh.map((t) => t.node), step);
      step.bindInputs(inputs.map((t) => t.node.buffer!));
      outputs = fresh.map((t) => t.node);
      return outputs.map(lent);
    }
    if (sig(inputs) !== signature) {
      throw new Error(`jit: called with ${sig(inputs)} but captured for ${signature}; make a new jit for new shapes`);
    }
    await step.replay(inputs.map((t) => t.node.buffer!));
    return outputs.map(lent);
  };
  // NOTE: defineProperty, not Object.assign, which would read the getter once and copy its value.
  Object.defineProperty(call, "launches", { get: () => step?.numLaunches ?? 0 });
  return Object.assign(call, {
    dispose() {
      step?.dispose();
      for (const n of outputs) n.dispose();
      step = undefined;
    },
  }) as unknown as JitFunction<A>;
}

/** A tensor over a jit-owned buffer: disposing or collecting it never frees the jit's memory. */
function lent(n: Node): Tensor {
  const view = new Node(n.backend, "buffer", [], { kind: "none" }, n.shape, n.dtype);
  view.setBuffer(n.buffer!, false);
  return new Tensor(view);
}
