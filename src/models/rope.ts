// rope.ts: rotary position embeddings in the Meta / llama2.c / GGUF convention: the rotary pairs are
// adjacent elements (2i, 2i+1) of each head, rotated by angle pos * freq_i, freq_i = theta^(-2i/D),
// with optional frequency scaling (linear; Llama 3.1's "llama3"). Tables are computed on the host in
// float64 once, for every position of the context (capped by default, kv_cache.ts); a forward picks its positions' rows.
// It does not know about caches or steps (kv_cache.ts picks the rows).

import type { Backend, DType, Tensor } from "../index.js";
import { arange, tensor } from "../index.js";
import type { RopeScaling } from "./types.js";

/** freq_i for i < headDim/2, after scaling. */
export function ropeFrequencies(headDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  if (headDim % 2 !== 0) throw new Error(`rope: head dim ${headDim} must be even`);
  const freqs = Float64Array.from({ length: headDim / 2 }, (_, i) => theta ** (-(2 * i) / headDim));
  if (!scaling) return freqs;
  const { type, factor } = scaling;
  if (!(factor > 0)) throw new Error(`rope: scaling factor must be > 0, got ${factor}`);
  if (type === "linear") return freqs.map((f) => f / factor);
  // Llama 3.1: long wavelengths are divided by factor, short ones kept, the middle band interpolated.
  const low = scaling.lowFreqFactor ?? 1;
  const high = scaling.highFreqFactor ?? 4;
  const original = scaling.originalMaxPositions ?? 8192;
  if (!(high > low)) throw new Error(`rope: llama3 scaling needs highFreqFactor > lowFreqFactor, got ${high} and ${low}`);
  return freqs.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < original / high) return f;
    if (wavelen > original / low) return f / factor;
    const smooth = (original / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/**
 * cos and signed sin per position and element, each (maxSeq, headDim): cos[p, 2i] = cos[p, 2i+1] = cos(p f_i),
 * sin[p, 2i] = -sin(p f_i), sin[p, 2i+1] = +sin(p f_i), so that rope(x) = x * cos + swapPairs(x) * sin.
 */
export interface RopeTables {
  readonly cos: Tensor;
  readonly sin: Tensor;
}

export function ropeTables(maxSeq: number, headDim: number, freqs: Float64Array, backend: Backend, dtype: DType): RopeTables {
  const cos = new Float64Array(maxSeq * headDim);
  const sin = new Float64Array(maxSeq * headDim);
  for (let p = 0; p < maxSeq; p++) {
    for (let i = 0; i < headDim / 2; i++) {
      const a = p * freqs[i]!;
      const at = p * headDim + 2 * i;
      cos[at] = cos[at + 1] = Math.cos(a);
      sin[at] = -Math.sin(a);
      sin[at + 1] = Math.sin(a);
    }
  }
  const opts = { backend, dtype, shape: [maxSeq, headDim] };
  return { cos: tensor(cos, opts), sin: tensor(sin, opts) };
}

/** Rotate x (T, heads, headDim) by this step's rows cos, sin (T, headDim). */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const d = x.shape[2]!;
  // (x[2i], x[2i+1]) -> (x[2i+1], x[2i]): a gather whose indices (iota xor 1) are computed inline.
  const swapped = x.gather(2, arange(d, undefined, 1, { backend: x.backend }).xor(1));
  const [c, s] = [cos.unsqueeze(1), sin.unsqueeze(1)]; // (T, 1, D)
  return x.mul(c).add(swapped.mul(s));
}
