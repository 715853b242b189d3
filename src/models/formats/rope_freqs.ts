// rope_freqs.ts: Llama 3.1-style RoPE scaling as GGUF stores it. llama.cpp keeps no llama3 scaling
// keys; its converter writes a `rope_freqs.weight` tensor of per-frequency divisors instead. This
// computes that tensor from a RopeScaling (writer) and recovers the RopeScaling from it (reader),
// checking that the recovered parameters reproduce every stored factor.
// NOTE: the divisors depend on low/high_freq_factor and original_max_position_embeddings only through
// their ratios, so the reader fixes originalMaxPositions (the file's
// rope.scaling.original_context_length, else Llama 3.1's 8192) and solves for the other two.

import type { RopeScaling } from "../types.js";
import { FormatError } from "./file_source.js";

const DEFAULT_ORIGINAL = 8192;

/** The tensor's name; readers turn it into config.ropeScaling rather than keeping it as a weight. */
export const ROPE_FREQS = "rope_freqs.weight";

const wavelength = (i: number, headDim: number, theta: number): number => 2 * Math.PI * theta ** ((2 * i) / headDim);

/** rope_freqs.weight (headDim / 2 divisors of the frequencies), as llama.cpp's convert_hf_to_gguf.py computes it. */
export function llama3RopeFactors(s: RopeScaling, headDim: number, theta: number): Float32Array {
  const low = s.lowFreqFactor ?? 1, high = s.highFreqFactor ?? 4, original = s.originalMaxPositions ?? DEFAULT_ORIGINAL;
  return Float32Array.from({ length: headDim / 2 }, (_, i) => {
    const wl = wavelength(i, headDim, theta);
    if (wl < original / high) return 1;
    if (wl > original / low) return s.factor;
    const smooth = (original / wl - low) / (high - low);
    return 1 / ((1 - smooth) / s.factor + smooth);
  });
}

function misfit(s: RopeScaling, factors: Float32Array, headDim: number, theta: number): number {
  const again = llama3RopeFactors(s, headDim, theta);
  return Math.max(...factors.map((r, i) => Math.abs(again[i]! - r) / r));
}

/** The llama3 RopeScaling that produces `factors`, or a FormatError naming the file. */
export function llama3FromRopeFactors(factors: Float32Array, headDim: number, theta: number, file: string, original = DEFAULT_ORIGINAL): RopeScaling {
  const field = "tensor 'rope_freqs.weight'";
  if (factors.length !== headDim / 2) throw new FormatError(file, field, `has ${factors.length} values; head size ${headDim} needs ${headDim / 2}`);
  const factor = Math.max(...factors);
  if (!(factor >= 1) || factors.some((r) => !(r >= 1))) throw new FormatError(file, field, "holds values below 1; not Llama 3-style frequency factors");
  const TOL = 1e-4;
  const make = (low: number, high: number): RopeScaling => ({ type: "llama3", factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: original });
  // Llama 3.x's own values (low 1, high 4) are the usual answer, and the only sensible one when few factors constrain them.
  if (misfit(make(1, 4), factors, headDim, theta) < TOL) return make(1, 4);
  const wl = (i: number): number => wavelength(i, headDim, theta);
  // In the middle band, 1/r = (1 - s)/factor + s with s = (original/wavelength - low) / (high - low): s is linear in original/wavelength.
  const mid: [number, number][] = [];
  factors.forEach((r, i) => {
    if (Math.abs(r - 1) > 1e-6 && Math.abs(r - factor) > 1e-6 * factor) mid.push([original / wl(i), (1 / r - 1 / factor) / (1 - 1 / factor)]);
  });
  let low: number, high: number;
  if (mid.length >= 2) {
    const [[x0, s0], [x1, s1]] = [mid[0]!, mid[mid.length - 1]!];
    const slope = (s1 - s0) / (x1 - x0); // 1 / (high - low)
    low = x0 - s0 / slope;
    high = low + 1 / slope;
  } else if (mid.length === 1) {
    // NOTE: one point fixes one relation; keep Llama 3's ratio high = 4 low.
    const [x, s] = mid[0]!;
    low = x / (3 * s + 1);
    high = 4 * low;
  } else {
    // No middle band: any band between the last unscaled and the first fully scaled wavelength fits.
    const a = factors.findLastIndex((r) => r === 1), b = factors.findIndex((r) => r === factor);
    const q = (wl(b) / wl(a)) ** 0.25;
    [low, high] = [original / (wl(b) / q), original / (wl(a) * q)];
  }
  // NOTE: f32 factors recover the parameters to ~1e-8; 6 significant digits give back round values.
  const scaling = make(Number(low.toPrecision(6)), Number(high.toPrecision(6)));
  const worst = misfit(scaling, factors, headDim, theta);
  if (!(worst < TOL)) throw new FormatError(file, field, `the factors do not follow Llama 3's scaling rule (relative misfit ${worst.toExponential(1)})`);
  return scaling;
}
