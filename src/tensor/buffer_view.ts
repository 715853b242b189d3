// buffer_view.ts: a tensor whose buffer is a range of another realized tensor's buffer (no copy), as
// llm.c keeps every parameter in one allocation: reads, kernels and assignments (Tensor.assign) through
// the view touch the base's memory. The view holds its base alive and frees nothing; the base frees the
// memory. It does not decide where views go (train/param_layout.ts lays parameters out).

import { Node, numel } from "../core/graph.js";
import { itemsize } from "../core/dtype.js";
import { fmt } from "./shape.js";
import { Tensor } from "./tensor.js";

/**
 * The `shape` elements of `base` from element `offset` (of base's dtype), as a realized tensor of their own.
 * `base` must be realized; offset * itemsize must be a multiple of the backend's caps.viewAlignBytes (webgpu:
 * minStorageBufferOffsetAlignment, 256 bytes; cpu: 4).
 */
export function bufferView(base: Tensor, offset: number, shape: readonly number[]): Tensor {
  const what = `bufferView of ${base} at ${offset} as ${fmt(shape)}`;
  const b = base.node;
  if (b.disposed) throw new Error(`${what}: the base is disposed`);
  if (!b.buffer) throw new Error(`${what}: the base must be realized (a view aliases its buffer)`);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${what}: bad shape`);
  const n = numel(shape);
  if (!Number.isInteger(offset) || offset < 0 || offset + n > b.numel) throw new Error(`${what}: outside the base's ${b.numel} elements`);
  const size = itemsize(b.dtype);
  const align = b.backend.caps.viewAlignBytes ?? 4;
  if ((offset * size) % align !== 0) throw new Error(`${what}: the offset is ${offset * size} bytes; ${b.backend.name} views start at multiples of ${align} bytes`);
  // NOTE: a view of a view is a view of the root base, so there is one owner to keep alive and one buffer to order writes by.
  const root = b.viewOf ? b.viewOf.base : b;
  const byteOffset = (b.viewOf?.byteOffset ?? 0) + offset * size;
  const node = new Node(b.backend, "buffer", [], { kind: "none" }, shape, b.dtype);
  node.setBuffer(b.backend.view(root.buffer!, byteOffset, n * size), false);
  node.viewOf = { base: root, byteOffset };
  return new Tensor(node);
}
