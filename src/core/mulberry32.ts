// mulberry32.ts: a small seeded generator of uniform floats in [0, 1) for host-side numbers that must
// repeat from a seed: random test weights and data, a load test's arrival times. Not for tensors
// (tensor/random.ts has the counter-based RNG every backend reproduces) and not for anything secret.

/** mulberry32: 32 bits of state, a new uniform in [0, 1) per call. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
