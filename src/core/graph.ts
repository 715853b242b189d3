// graph.ts owns the lazy graph: one Node per op application, realized nodes holding device buffers.
// Nodes are plain records; shape checking and broadcasting happen where nodes are made (src/tensor),
// kernels are cut from them by schedule.ts. A realized node drops its sources so the graph behind it
// can be garbage-collected; its buffer is freed when the node is.

import type { Backend, DeviceBuffer } from "./backend.js";
import type { DType } from "./dtype.js";
import { itemsize } from "./dtype.js";
import type { Op, ReduceOp, RoutineName } from "./ops.js";
import type { RoutineSpecs } from "./routines.js";
import type { CollectiveSpec } from "./collectives.js";

/** Each op's argument, as plain data. */
export type NodeArg =
  | { readonly kind: "none" }
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "reduce"; readonly op: ReduceOp; readonly axes: readonly number[] }
  | { readonly kind: "permute"; readonly perm: readonly number[] }
  | { readonly kind: "pad"; readonly pads: readonly (readonly [number, number])[] }
  | { readonly kind: "shrink"; readonly ranges: readonly (readonly [number, number])[] }
  | { readonly kind: "gather"; readonly axis: number }
  | { readonly kind: "routine"; readonly name: RoutineName; readonly spec: RoutineSpecs[RoutineName] }
  | { readonly kind: "collective"; readonly spec: CollectiveSpec };

export const NO_ARG: NodeArg = { kind: "none" };

let nextId = 0;

// Frees a realized node's buffer once nothing can reach the node any more.
const reaper = new FinalizationRegistry<{ backend: Backend; buffer: DeviceBuffer }>(({ backend, buffer }) => {
  try {
    backend.free(buffer);
  } catch {
    // NOTE: a disposed backend has already released everything.
  }
});

export class Node {
  readonly id = nextId++;
  /** Set once realized: then op is "buffer" and src is empty. */
  buffer: DeviceBuffer | undefined;
  /** Set by dispose(): any later use is an error. */
  disposed = false;
  /** False for buffers lent by someone else (a jit's outputs): never freed through this node. */
  owned = true;
  /** Give this node a buffer of its own even where the scheduler would inline it (Tensor.contiguous). */
  keep = false;
  /**
   * Realize this node into that realized node's buffer instead of a new one (Tensor.assign): persistent
   * state (weights, optimizer moments) updated in place, so a jit-captured step keeps binding the same buffers.
   */
  into: Node | undefined;
  /**
   * Ordering edges: nodes scheduled before this one although it does not read them (a control
   * dependency). NOTE: activation checkpointing (autograd/checkpoint.ts) uses them so a block's
   * recompute runs when its backward does, not wherever the depth-first order first meets it.
   */
  after: readonly Node[] = [];
  /**
   * Set for a view (tensor/buffer_view.ts): this node's buffer aliases bytes of `base`'s, from `byteOffset`.
   * NOTE: the reference keeps the base (and so its buffer) alive while the view is reachable; the view
   * itself is never freed (owned false), and disposing the base makes the view unusable.
   */
  viewOf: { readonly base: Node; readonly byteOffset: number } | undefined;

  constructor(
    readonly backend: Backend,
    public op: Op,
    public src: readonly Node[],
    public arg: NodeArg,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}

  get numel(): number {
    return numel(this.shape);
  }
  get nbytes(): number {
    return this.numel * itemsize(this.dtype);
  }
  get realized(): boolean {
    return this.buffer !== undefined;
  }

  /** Turn this node into a realized buffer node, dropping its sources. */
  setBuffer(buffer: DeviceBuffer, owned = true): void {
    this.buffer = buffer;
    this.op = "buffer";
    this.src = [];
    this.after = [];
    this.arg = NO_ARG;
    this.owned = owned;
    if (owned) reaper.register(this, { backend: this.backend, buffer }, this);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.buffer && this.owned) {
      reaper.unregister(this);
      this.backend.free(this.buffer);
    }
    this.buffer = undefined;
    this.src = [];
    this.after = [];
  }

  /** "add (2, 3) f32 on cpu": how errors name a value. */
  describe(): string {
    return `${this.op} (${this.shape.join(", ")}) ${this.dtype} on ${this.backend.name}`;
  }
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Nodes reachable from the roots without passing a realized node, sources (and `after` nodes) before users. */
export function topoSort(roots: readonly Node[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // Iterative DFS: model graphs are deep enough to overflow a recursive one.
  const stack: [Node, boolean][] = roots.map((r) => [r, false]);
  while (stack.length) {
    const [n, expanded] = stack.pop()!;
    if (expanded) { order.push(n); continue; }
    if (seen.has(n)) continue;
    seen.add(n);
    if (n.disposed) throw new Error(`use of a disposed tensor: ${n.describe()}`);
    if (n.viewOf?.base.disposed) throw new Error(`use of a view of a disposed tensor: ${n.describe()} (its base ${n.viewOf.base.describe()})`);
    stack.push([n, true]);
    for (let i = n.src.length - 1; i >= 0; i--) if (!seen.has(n.src[i]!)) stack.push([n.src[i]!, false]);
    // Pushed last, so visited first: everything they need is emitted before the node's own sources.
    for (let i = n.after.length - 1; i >= 0; i--) if (!seen.has(n.after[i]!)) stack.push([n.after[i]!, false]);
  }
  return order;
}
