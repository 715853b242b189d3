// hetero_shares.ts: data parallel over ranks of unequal speed (a slower GPU type beside faster ones): each
// rank's rows of the global batch in proportion to its measured speed, so that no rank waits long for the
// slowest at the all-reduce. Plain numbers in, plain numbers out: the measuring is data_parallel.ts's
// timings (a rank's own work per step), the weighting of the gradient data_parallel.ts's rowShares.
// NOTE: a step's time is modelled as linear in a rank's rows (ms per row, measured at its current rows);
// a fixed per-step cost that does not shrink with fewer rows makes the balance approximate, not wrong:
// every rank still computes the global batch's exact mean gradient, whatever the shares.

import type { Communicator } from "./comm.js";

/**
 * Rows per rank that minimise the slowest rank's time (rows x ms per row), each rank at least one row,
 * adding up to `globalRows`. Deterministic (ties go to the lower rank), so every rank computes the same
 * shares from the same measurements.
 */
export function sharesBySpeed(msPerRow: readonly number[], globalRows: number): number[] {
  const bad = msPerRow.findIndex((m) => !(Number.isFinite(m) && m > 0));
  if (bad >= 0) throw new Error(`heterogeneous data parallel: rank ${bad}'s measured time per row is ${msPerRow[bad]} ms, not a positive number`);
  if (!(Number.isInteger(globalRows) && globalRows >= msPerRow.length)) {
    throw new Error(`heterogeneous data parallel: a global batch of ${globalRows} rows cannot give each of ${msPerRow.length} ranks a row`);
  }
  const rows = msPerRow.map(() => 1);
  // NOTE: greedy min-max: each further row goes to the rank that would finish it soonest; with linear
  // costs this gives the smallest possible maximum. O(rows x ranks), fine for batches of thousands.
  for (let left = globalRows - rows.length; left > 0; left--) {
    let best = 0;
    for (let r = 1; r < rows.length; r++) if ((rows[r]! + 1) * msPerRow[r]! < (rows[best]! + 1) * msPerRow[best]!) best = r;
    rows[best]!++;
  }
  return rows;
}

/**
 * Every rank's rows, from each rank's measured time per row (`msPerRow`, this rank's: its own work per
 * step, data_parallel.ts timings().computeMs, divided by its rows then): all-gathered, then sharesBySpeed.
 * Every rank must call it (a collective); all get the same shares.
 */
export async function balancedShares(comm: Communicator, msPerRow: number, globalRows: number): Promise<number[]> {
  const all = await comm.allGather(new Float32Array([msPerRow]));
  return sharesBySpeed(Array.from(all), globalRows);
}

/** The median of a rank's per-step times, leaving out the first `skip` steps (a jit capture, a warm-up). */
export function medianMs(ms: readonly number[], skip = 1): number {
  const xs = ms.slice(skip).sort((a, b) => a - b);
  if (xs.length === 0) throw new Error(`heterogeneous data parallel: no step times to measure after skipping ${skip} (train more steps first)`);
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}
