// arrivals.ts: the open-loop arrival times of `kiln bench serve --rate`: a Poisson process, i.e.
// exponential inter-arrival gaps, drawn from a small seeded generator so a run's schedule is
// reproducible. It owns the numbers only; waiting for them and sending requests is run_level.ts's.

/** mulberry32: a 32-bit seeded generator of uniforms in [0, 1); plenty for spacing requests. */
export function seededUniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Arrival times in seconds of a Poisson process of `rate` requests/s: the k-th arrival is the sum of
 * k exponential gaps of mean 1/rate. The same seed gives the same unit gaps at every rate, so the
 * schedule at rate r is the schedule at rate 1 divided by r.
 */
export class PoissonArrivals {
  private readonly uniform: () => number;
  private t = 0;

  constructor(seed: number, readonly rate: number) {
    if (!(rate > 0 && Number.isFinite(rate))) throw new RangeError(`PoissonArrivals: rate must be a positive number, got ${rate}`);
    this.uniform = seededUniform(seed);
  }

  /** The next arrival time (seconds from the start). */
  next(): number {
    // NOTE: 1 - u is in (0, 1], so the log is finite and every gap is >= 0.
    this.t += -Math.log(1 - this.uniform()) / this.rate;
    return this.t;
  }
}
