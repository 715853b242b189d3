// rng.ts: the sampler's random numbers: a counter-based stream on the host, so draw n of a request
// is a pure function of (seed, n): the same seed gives the same tokens on every backend (the logits
// agree), and a request can be resumed or replayed without carrying generator state.
// It does not draw on a device (src/tensor/random.ts does, with the same hash).

import { mix32 } from "../../tensor/random.js";

/** A 32-bit key from a seed in [0, 2^53): both halves of the seed matter. */
export function seedKey(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return mix32((lo ^ mix32((hi ^ 0x9e3779b9) >>> 0)) >>> 0);
}

function word(key: number, counter: number): number {
  return mix32((mix32((counter ^ key) >>> 0) + key) >>> 0);
}

/** Uniform double in [0, 1) with 53 random bits: draw `counter` of the stream `key`. */
export function uniformAt(key: number, counter: number): number {
  const c = (counter * 2) >>> 0;
  const a = word(key, c) >>> 5; // 27 bits
  const b = word(key, (c + 1) >>> 0) >>> 6; // 26 bits
  return (a * 2 ** 26 + b) / 2 ** 53;
}
