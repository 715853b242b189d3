// side_by_side.ts: the arithmetic and the tables of a kiln-vs-peer comparison, as pure functions of
// the timings (no engine, no peer: unit-tested on their own). Timings come in alternating pairs (kiln,
// then the peer, or the other way round), so each pair saw nearly the same machine load; the headline
// ratio is of the medians, and the spread of the per-pair ratios says how much the load moved it.

import { fmt3 } from "../lib/markdown.js";
import { median } from "../lib/timing.js";

export interface Comparison {
  /** Tokens per timed run (the same for both engines). */
  readonly tokens: number;
  readonly reps: number;
  readonly kilnTokensPerS: number;
  readonly peerTokensPerS: number;
  /** kiln / peer tokens/s (above 1: kiln is faster). */
  readonly ratio: number;
  /** kiln / peer of each alternating pair: min, median, max. */
  readonly pairRatios: { readonly min: number; readonly median: number; readonly max: number };
}

/** Compares `tokens`-token runs timed in pairs: kilnMs[i] and peerMs[i] ran next to each other. */
export function compare(tokens: number, kilnMs: readonly number[], peerMs: readonly number[]): Comparison {
  if (!(tokens > 0)) throw new Error(`side by side: tokens must be > 0, got ${tokens}`);
  if (kilnMs.length === 0 || kilnMs.length !== peerMs.length) {
    throw new Error(`side by side: need the same number (>= 1) of kiln and peer runs, got ${kilnMs.length} and ${peerMs.length}`);
  }
  for (const [who, xs] of [["kiln", kilnMs], ["peer", peerMs]] as const) {
    const bad = xs.find((x) => !(x > 0) || !Number.isFinite(x));
    if (bad !== undefined) throw new Error(`side by side: ${who} run time must be a positive number of ms, got ${bad}`);
  }
  const kilnTokensPerS = (tokens * 1000) / median(kilnMs);
  const peerTokensPerS = (tokens * 1000) / median(peerMs);
  const pairs = kilnMs.map((k, i) => peerMs[i]! / k);
  return {
    tokens, reps: kilnMs.length, kilnTokensPerS, peerTokensPerS, ratio: kilnTokensPerS / peerTokensPerS,
    pairRatios: { min: Math.min(...pairs), median: median(pairs), max: Math.max(...pairs) },
  };
}

/** How many leading tokens two greedy continuations share. */
export function leadingAgreement(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export interface SideBySideRow {
  readonly model: string;
  /** e.g. "85.7M" */
  readonly params: string;
  readonly threads: number;
  /** e.g. "prefill pp64" */
  readonly workload: string;
  readonly comparison: Comparison;
}

export function sideBySideTable(rows: readonly SideBySideRow[], peer: string): string[] {
  return [
    `| model | params | threads | workload | kiln tokens/s | ${peer} tokens/s | kiln / ${peer} | pair ratios (min-max) | pairs |`,
    "|---|--:|--:|---|--:|--:|--:|--:|--:|",
    ...rows.map((r) => {
      const c = r.comparison;
      return `| ${r.model} | ${r.params} | ${r.threads} | ${r.workload} | ${fmt3(c.kilnTokensPerS)} | ${fmt3(c.peerTokensPerS)} | ` +
        `${c.ratio.toFixed(2)} | ${c.pairRatios.min.toFixed(2)}-${c.pairRatios.max.toFixed(2)} | ${c.reps} |`;
    }),
  ];
}
