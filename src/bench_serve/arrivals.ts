// arrivals.ts: the open-loop arrival times of `kiln bench serve --rate`: a Poisson process, i.e.
// exponential inter-arrival gaps, drawn from a small seeded generator so a run's schedule is
// reproducible. It owns the numbers only; waiting for them and sending requests is run_level.ts's.

import { mulberry32 } from "../core/mulberry32.js";

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
    this.uniform = mulberry32(seed);
  }

  /** The next arrival time (seconds from the start). */
  next(): number {
    // NOTE: 1 - u is in (0, 1], so the log is finite and every gap is >= 0.
    this.t += -Math.log(1 - this.uniform()) / this.rate;
    return this.t;
  }
}
