// serve_side_by_side.ts: the table of a serving comparison, kiln serve beside a peer server, as a pure
// function of the passes' level reports (src/bench_serve's LevelReport, reduced to the two figures the
// issue compares: output tokens/s and TTFT p99). Passes alternate which server goes first; the ratio is
// of the medians over passes, and every pass's figures are listed, since the load moves them.

import { median } from "../lib/timing.js";

/** One server's figures at one load level in one pass. */
export interface ServePoint {
  readonly outputTokensPerS: number;
  readonly ttftP99Ms: number;
  readonly errors: number;
}

export interface ServeLevelComparison {
  /** e.g. "c=32" */
  readonly level: string;
  readonly requests: number;
  readonly kiln: readonly ServePoint[];
  readonly peer: readonly ServePoint[];
  /** kiln / peer output tokens/s (medians over passes): above 1, kiln serves more. */
  readonly throughputRatio: number;
  /** kiln / peer TTFT p99 (medians over passes): below 1, kiln answers sooner. */
  readonly ttftP99Ratio: number;
}

export function compareServe(level: string, requests: number, kiln: readonly ServePoint[], peer: readonly ServePoint[]): ServeLevelComparison {
  if (kiln.length === 0 || kiln.length !== peer.length) throw new Error(`serve side by side (${level}): need the same number (>= 1) of passes, got ${kiln.length} and ${peer.length}`);
  const med = (xs: readonly ServePoint[], k: "outputTokensPerS" | "ttftP99Ms") => median(xs.map((x) => x[k]));
  return {
    level, requests, kiln, peer,
    throughputRatio: med(kiln, "outputTokensPerS") / med(peer, "outputTokensPerS"),
    ttftP99Ratio: med(kiln, "ttftP99Ms") / med(peer, "ttftP99Ms"),
  };
}

const list = (xs: readonly ServePoint[], k: "outputTokensPerS" | "ttftP99Ms") => xs.map((x) => x[k].toFixed(0)).join(" / ");

export function serveTable(rows: readonly ServeLevelComparison[], peer: string): string[] {
  return [
    `| load | requests | kiln output tok/s (passes) | ${peer} output tok/s (passes) | kiln / ${peer} tok/s | kiln TTFT p99 ms | ${peer} TTFT p99 ms | kiln / ${peer} TTFT p99 | errors (kiln / ${peer}) |`,
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...rows.map((r) => {
      const errs = (xs: readonly ServePoint[]) => xs.reduce((a, x) => a + x.errors, 0);
      return `| ${r.level} | ${r.requests} | ${list(r.kiln, "outputTokensPerS")} | ${list(r.peer, "outputTokensPerS")} | ${r.throughputRatio.toFixed(2)} | ` +
        `${list(r.kiln, "ttftP99Ms")} | ${list(r.peer, "ttftP99Ms")} | ${r.ttftP99Ratio.toFixed(2)} | ${errs(r.kiln)} / ${errs(r.peer)} |`;
    }),
  ];
}
