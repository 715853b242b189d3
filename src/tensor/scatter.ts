// scatter.ts: scatter-add, the gradient of a gather (an embedding's): out = zeros(size, ...src.shape[1:])
// with out[indices[i]] += src[i]. A routine (sorted segment sum on cpu, one owner per element on webgpu)
// when the backend has one for the spec; the reference below, from primitives, defines what it means.

import { isFloat } from "../core/dtype.js";
import { NO_ARG, Node } from "../core/graph.js";
import type { ScatterAddSpec } from "../core/routines.js";
import { areRoutinesEnabled, isGradEnabled } from "./context.js";
import { fmt } from "./shape.js";
import { Tensor } from "./tensor.js";

function scatterSpec(size: number, indices: Tensor, src: Tensor): ScatterAddSpec {
  if (indices.ndim !== 1 || src.ndim < 1 || src.shape[0] !== indices.shape[0] || isFloat(indices.dtype) || !Number.isInteger(size) || size < 0) {
    throw new Error(`scatterAdd: need a size >= 0, integer indices (N,) and src (N, ...), got ${size}, ${fmt(indices.shape)} ${indices.dtype} and ${fmt(src.shape)}`);
  }
  const n = indices.shape[0]!;
  return { rows: size, cols: src.shape.slice(1).reduce((a, b) => a * b, 1), n, dtype: src.dtype };
}

/**
 * out = zeros(size, ...src.shape[1:]) with out[indices[i]] += src[i]. An index outside [0, size) adds
 * nothing (a gather there reads 0, so its gradient goes nowhere).
 */
export function scatterAdd(size: number, indices: Tensor, src: Tensor): Tensor {
  const spec = scatterSpec(size, indices, src);
  const shape = [size, ...src.shape.slice(1)];
  if (!areRoutinesEnabled() || !isFloat(src.dtype) || !src.backend.supportsRoutine("scatter_add", spec)) {
    return scatterAddReference(size, indices, src);
  }
  const idx = indices.dtype === "i32" ? indices : indices.cast("i32");
  const operands = [idx.node, src.reshape([spec.n, spec.cols]).node];
  const out = new Tensor(new Node(src.backend, "routine", operands, { kind: "routine", name: "scatter_add", spec }, [spec.rows, spec.cols], src.dtype));
  if (isGradEnabled() && src.requiresGrad) {
    out.requiresGrad = true;
    out.ctx = { op: "routine", arg: { kind: "routine", name: "scatter_add", spec }, inputs: [idx, src] };
  }
  return out.reshape(shape);
}

/**
 * The reference: a one-hot reduction (sum over i of [indices[i] == row] * src[i]). It needs no atomics
 * and fuses into one kernel, but costs size x N x C: fine for tests, not for a real vocabulary.
 */
export function scatterAddReference(size: number, indices: Tensor, src: Tensor): Tensor {
  const { n } = scatterSpec(size, indices, src);
  const rest = src.shape.slice(1);
  const iota = new Tensor(new Node(src.backend, "iota", [], NO_ARG, [size], "i32"));
  const hot = iota.reshape([size, 1]).eq(indices.cast("i32").reshape([1, n])).cast(src.dtype); // (size, N)
  const ones = rest.map(() => 1);
  return hot.reshape([size, n, ...ones]).mul(src.reshape([1, n, ...rest])).sum(1);
}
