// create.ts: making tensors from host data and from nothing (zeros, arange, eye). Host data is
// written to the device at once; constants and ranges are lazy nodes that cost no memory until read.

import type { Backend } from "../core/backend.js";
import type { DType } from "../core/dtype.js";
import { encode, isFloat } from "../core/dtype.js";
import { NO_ARG, Node, numel } from "../core/graph.js";
import { defaultBackend } from "../backends/index.js";
import { flatten, fmt, shapeOf } from "./shape.js";
import { Tensor } from "./tensor.js";

export interface TensorOptions {
  readonly dtype?: DType;
  readonly backend?: Backend;
  readonly requiresGrad?: boolean;
}

type HostData = number | boolean | readonly unknown[] | ArrayLike<number>;

function dtypeOfData(data: HostData): DType {
  if (data instanceof Float64Array) return "f64";
  if (data instanceof Int32Array) return "i32";
  if (data instanceof Uint32Array) return "u32";
  if (data instanceof Uint8Array) return "u8";
  if (typeof data === "boolean") return "bool";
  return "f32";
}

/** A tensor holding host data (nested arrays, a typed array with `shape`, or a number). */
export function tensor(data: HostData, opts: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  const backend = opts.backend ?? defaultBackend();
  let values: ArrayLike<number>;
  let shape: readonly number[];
  if (typeof data === "number" || typeof data === "boolean") {
    values = [Number(data)];
    shape = opts.shape ?? [];
  } else if (Array.isArray(data)) {
    const inferred = shapeOf(data);
    values = flatten(data, inferred);
    shape = opts.shape ?? inferred;
  } else {
    values = data as ArrayLike<number>;
    shape = opts.shape ?? [values.length];
  }
  if (numel(shape) !== values.length) {
    throw new Error(`tensor: ${values.length} values do not fill shape ${fmt(shape)}`);
  }
  const dtype = opts.dtype ?? dtypeOfData(data);
  if (!backend.caps.dtypes.includes(dtype)) throw new Error(`tensor: ${dtype} is not supported on ${backend.name}`);
  const node = new Node(backend, "buffer", [], NO_ARG, shape, dtype);
  const bytes = encode(values, dtype);
  const buf = backend.alloc(Math.max(bytes.byteLength, 4));
  if (bytes.byteLength) backend.write(buf, bytes);
  node.setBuffer(buf);
  return new Tensor(node, opts.requiresGrad ?? false);
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const backend = opts.backend ?? defaultBackend();
  const node = new Node(backend, "const", [], { kind: "const", value }, [...shape], opts.dtype ?? "f32");
  return new Tensor(node, opts.requiresGrad ?? false);
}

export const zeros = (shape: readonly number[], opts: TensorOptions = {}): Tensor => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: TensorOptions = {}): Tensor => full(shape, 1, opts);

/** [start, start + step, ...) below stop, like NumPy's arange (i32 unless a float dtype or step is asked for). */
export function arange(start: number, stop?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const intLike = Number.isInteger(start) && Number.isInteger(step);
  const dtype = opts.dtype ?? (intLike ? "i32" : "f32");
  const backend = opts.backend ?? defaultBackend();
  const iota = new Tensor(new Node(backend, "iota", [], NO_ARG, [n], isFloat(dtype) ? dtype : "i32"));
  const out = iota.mul(step).add(start).cast(dtype);
  out.requiresGrad = false;
  return out;
}

export function eye(n: number, opts: TensorOptions = {}): Tensor {
  const i = arange(n, undefined, 1, { backend: opts.backend ?? defaultBackend() });
  return i.reshape([n, 1]).eq(i.reshape([1, n])).cast(opts.dtype ?? "f32");
}
