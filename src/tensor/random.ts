// random.ts: a counter-based RNG built from integer primitives, so every backend produces the same
// stream bit for bit: value i of a draw is hash(seed, offset + i). No state lives on a device;
// the host keeps (seed, offset) and advances the offset by each draw's size.

import { NO_ARG, Node } from "../core/graph.js";
import { defaultBackend } from "../backends/index.js";
import type { TensorOptions } from "./create.js";
import { Tensor } from "./tensor.js";

let globalSeed = 0x1234;
let globalOffset = 0;

/** Reset the default stream (draws after this repeat exactly on every backend). */
export function manualSeed(seed: number): void {
  globalSeed = seed >>> 0;
  globalOffset = 0;
}

/** lowbias32 (Chris Wellons' integer hash), on the host: for the key here, and the samplers' streams. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The same hash as a graph of u32 ops. */
function mixTensor(x: Tensor): Tensor {
  x = x.xor(x.shr(16));
  x = x.mul(0x7feb352d);
  x = x.xor(x.shr(15));
  x = x.mul(0x846ca68b);
  return x.xor(x.shr(16));
}

export interface RandomOptions extends TensorOptions {
  /** A fixed seed: the draw is then independent of the default stream. */
  readonly seed?: number;
}

/** Raw u32 random bits. */
export function randomBits(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const backend = opts.backend ?? defaultBackend();
  const n = shape.reduce((a, b) => a * b, 1);
  let seed: number, offset: number;
  if (opts.seed !== undefined) [seed, offset] = [opts.seed >>> 0, 0];
  else [seed, offset, globalOffset] = [globalSeed, globalOffset, globalOffset + n];
  const key = mix32(seed);
  const counter = new Tensor(new Node(backend, "iota", [], NO_ARG, [n], "u32")).add(offset >>> 0);
  return mixTensor(mixTensor(counter.xor(key)).add(key)).reshape(shape);
}

/** Uniform in [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  // 24 random bits fill an f32 mantissa exactly.
  const out = randomBits(shape, opts).shr(8).cast("f32").mul(2 ** -24).cast(opts.dtype ?? "f32");
  out.requiresGrad = opts.requiresGrad ?? false;
  return out;
}

/** Standard normal (Box-Muller over two uniform draws). */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = rand([2, n], { ...opts, dtype: "f32", requiresGrad: false });
  const u1 = u.slice(0, 0, 1).rsub(1); // (0, 1]: log stays finite
  const u2 = u.slice(0, 1, 2);
  const z = u1.log().mul(-2).sqrt().mul(u2.mul(2 * Math.PI).cos()).reshape(shape).cast(opts.dtype ?? "f32");
  z.requiresGrad = opts.requiresGrad ?? false;
  return z;
}
