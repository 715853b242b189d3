// percentiles.ts: the statistics `kiln bench serve` reports over one load level's samples: percentiles
// by linear interpolation between the closest ranks, and the mean. Pure functions on numbers; which
// samples go in (successful requests only) is report.ts's decision.

/**
 * The p-th percentile (0 <= p <= 100) of `values`, NaN when there are none.
 * NOTE: linear interpolation between closest ranks (numpy's default, which vLLM's benchmark reports):
 * with the values sorted, rank r = p/100 * (n - 1) and the result is v[floor r] + frac(r) * (v[ceil r] -
 * v[floor r]). So p50 of [1, 2, 3, 4] is 2.5 and p99 of 1..100 is 99.01, and the result never leaves
 * the range of the values.
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return percentileOfSorted(sorted, p);
}

function percentileOfSorted(sorted: readonly number[], p: number): number {
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  return lo === hi ? a : a + (rank - lo) * (sorted[hi]! - a);
}

/** Mean, median and 99th percentile of a sample; null fields when the sample is empty. */
export interface Summary {
  readonly count: number;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { count: 0, mean: null, p50: null, p99: null };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { count: sorted.length, mean, p50: percentileOfSorted(sorted, 50), p99: percentileOfSorted(sorted, 99) };
}
