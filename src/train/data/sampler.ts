// sampler.ts: which windows of T+1 tokens make up a batch, as a pure function of (seed, epoch, step,
// rank, world size): no state, so a loader position is just (epoch, step) and resuming replays exactly.
// Two modes:
// - "random" (nanoGPT's get_batch): each of the B windows starts at an offset drawn uniformly from
//   [0, N - T - 1], from a counter-based hash of (seed, epoch, step, rank, row). Ranks draw
//   independently, so windows may overlap.
// - "sequential": the split is cut into W = floor((N - 1) / T) windows (window w starts at token w*T;
//   neighbours share one token, the target of the last position). Each epoch visits them in a
//   permuted order (a keyed Feistel bijection on [0, W), cycle-walked; identity with shuffle off);
//   step s of rank r takes order[(s * worldSize + r) * B + b]: ranks never overlap within an epoch,
//   and the W mod (worldSize*B) windows left over at the end of an epoch are skipped in that epoch.
// It does not read tokens (loader.ts does).

import { mix32 } from "../../tensor/random.js";

export type SampleMode = "random" | "sequential";

export interface SamplerConfig {
  readonly mode: SampleMode;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly batchSize: number;
  readonly blockSize: number;
  /** Tokens in the split. */
  readonly tokens: number;
  /** sequential only: permute the windows each epoch (default true). */
  readonly shuffle?: boolean;
}

const GOLDEN = 0x9e3779b9;

/** A 32-bit hash of a tuple of integers (each word mixed into the running state). */
export function hashWords(...words: number[]): number {
  let h = mix32(GOLDEN);
  for (const w of words) h = mix32((h ^ (w >>> 0)) + GOLDEN);
  return h;
}

/** Batches per epoch for every rank (the same count on each). */
export function stepsPerEpoch(c: SamplerConfig): number {
  const perStep = c.worldSize * c.batchSize;
  if (c.mode === "random") return Math.max(1, Math.floor((c.tokens - 1) / (c.blockSize * perStep)));
  return Math.floor(windowCount(c) / perStep);
}

export function windowCount(c: SamplerConfig): number {
  return Math.floor((c.tokens - 1) / c.blockSize);
}

/** The first token of each of the B windows of (epoch, step) on this rank. */
export function windowStarts(c: SamplerConfig, epoch: number, step: number): number[] {
  const starts: number[] = [];
  if (c.mode === "random") {
    const span = c.tokens - c.blockSize; // offsets 0..N-T-1
    for (let b = 0; b < c.batchSize; b++) {
      const hi = hashWords(c.seed, epoch, step, c.rank, b, 0);
      const lo = hashWords(c.seed, epoch, step, c.rank, b, 1);
      // NOTE: 53 random bits scaled to the span: unbiased to within 2^-53 * span.
      const u = ((hi >>> 5) * 2 ** 26 + (lo >>> 6)) / 2 ** 53;
      starts.push(Math.floor(u * span));
    }
    return starts;
  }
  const w = windowCount(c);
  const shuffle = c.shuffle ?? true;
  for (let b = 0; b < c.batchSize; b++) {
    const slot = (step * c.worldSize + c.rank) * c.batchSize + b;
    starts.push((shuffle ? permute(slot, w, c.seed, epoch) : slot) * c.blockSize);
  }
  return starts;
}

/** A bijection of [0, n) keyed by (seed, epoch): a 4-round Feistel network on the next even bit width, cycle-walked. */
export function permute(i: number, n: number, seed: number, epoch: number): number {
  if (n > 2 ** 32) throw new Error(`sampler: ${n} windows is more than the 2^32 the permutation covers (use a larger block size)`);
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  const half = 2 ** (bits / 2);
  const keys = [0, 1, 2, 3].map((r) => hashWords(seed, epoch, r));
  let x = i;
  do {
    let left = Math.floor(x / half);
    let right = x % half;
    for (const k of keys) [left, right] = [right, ((left ^ mix32(right ^ k)) >>> 0) % half];
    x = left * half + right;
  } while (x >= n);
  return x;
}
