// compare.ts: `kiln bench serve --peer-url`: the same load against two servers (kiln serve at --url, a
// peer such as llama.cpp's server at --peer-url), in passes that alternate which server goes first, and
// the table that compares them on the figures issue 14 asks about: output tokens/s and TTFT p99, with
// TTFT p50 beside it (medians over passes; every pass's tokens/s and p99 listed, since a shared machine's
// load moves them). Each level
// runs on its own against each server. Nothing here starts servers (bench/serve_peer.ts does).

import type { BenchServeHooks, BenchServeOptions } from "./bench_serve.js";
import { runBenchServe } from "./bench_serve.js";
import { percentile } from "./percentiles.js";
import type { LevelReport } from "./report.js";
import { shapeLabel } from "./report.js";
import type { LoadShape } from "./run_level.js";

/** One server's figures at one load level in one pass. */
export interface ServePoint {
  readonly outputTokensPerS: number;
  readonly ttftP50Ms: number;
  readonly ttftP99Ms: number;
  readonly errors: number;
}

export interface ServeLevelComparison {
  /** e.g. "concurrency 32" */
  readonly level: string;
  readonly requests: number;
  readonly kiln: readonly ServePoint[];
  readonly peer: readonly ServePoint[];
  /** kiln / peer output tokens/s (medians over passes): above 1, kiln serves more. */
  readonly throughputRatio: number;
  /** kiln / peer TTFT p99 (medians over passes): below 1, kiln answers sooner. */
  readonly ttftP99Ratio: number;
  /** Medians over passes of each server's TTFT p50. */
  readonly ttftP50Ms: { readonly kiln: number; readonly peer: number };
}

export function compareServe(level: string, requests: number, kiln: readonly ServePoint[], peer: readonly ServePoint[]): ServeLevelComparison {
  if (kiln.length === 0 || kiln.length !== peer.length) throw new Error(`serve side by side (${level}): need the same number (>= 1) of passes, got ${kiln.length} and ${peer.length}`);
  const med = (xs: readonly ServePoint[], k: "outputTokensPerS" | "ttftP50Ms" | "ttftP99Ms") => percentile(xs.map((x) => x[k]), 50);
  return {
    level, requests, kiln, peer,
    throughputRatio: med(kiln, "outputTokensPerS") / med(peer, "outputTokensPerS"),
    ttftP99Ratio: med(kiln, "ttftP99Ms") / med(peer, "ttftP99Ms"),
    ttftP50Ms: { kiln: med(kiln, "ttftP50Ms"), peer: med(peer, "ttftP50Ms") },
  };
}

const list = (xs: readonly ServePoint[], k: "outputTokensPerS" | "ttftP99Ms") => xs.map((x) => x[k].toFixed(0)).join(" / ");

export function serveTable(rows: readonly ServeLevelComparison[], peer: string): string[] {
  return [
    `| load | requests | kiln output tok/s (passes) | ${peer} output tok/s (passes) | kiln / ${peer} tok/s | TTFT p50 ms (kiln / ${peer}) | kiln TTFT p99 ms | ${peer} TTFT p99 ms | kiln / ${peer} TTFT p99 | errors (kiln / ${peer}) |`,
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...rows.map((r) => {
      const errs = (xs: readonly ServePoint[]) => xs.reduce((a, x) => a + x.errors, 0);
      return `| ${r.level} | ${r.requests} | ${list(r.kiln, "outputTokensPerS")} | ${list(r.peer, "outputTokensPerS")} | ${r.throughputRatio.toFixed(2)} | ` +
        `${r.ttftP50Ms.kiln.toFixed(0)} / ${r.ttftP50Ms.peer.toFixed(0)} | ` +
        `${list(r.kiln, "ttftP99Ms")} | ${list(r.peer, "ttftP99Ms")} | ${r.ttftP99Ratio.toFixed(2)} | ${errs(r.kiln)} / ${errs(r.peer)} |`;
    }),
  ];
}

export interface ComparisonHooks extends BenchServeHooks {
  /** Requests of a level (default: opts.requests). */
  readonly requestsFor?: (shape: LoadShape) => number;
  /** Called after each level of each pass (progress lines). */
  readonly onLevel?: (pass: number, who: "kiln" | "peer", level: LevelReport) => void;
}

/**
 * Runs every level of `opts` against opts.url (kiln) and `peerUrl`, `passes` times, the server that goes
 * first alternating (kiln on even passes). The peer is asked for its own first listed model unless
 * `peerModel` is given (two servers rarely name one model alike).
 */
export async function runServeComparison(opts: BenchServeOptions, peerUrl: string, passes: number, hooks: ComparisonHooks = {}, peerModel?: string): Promise<ServeLevelComparison[]> {
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`serve side by side: passes must be an integer >= 1, got ${passes}`);
  const { model: _unused, ...rest } = opts;
  const target = { kiln: opts, peer: { ...rest, url: peerUrl, ...(peerModel === undefined ? {} : { model: peerModel }) } };
  const points = opts.levels.map(() => ({ kiln: [] as ServePoint[], peer: [] as ServePoint[] }));
  const base = { ...(hooks.signal ? { signal: hooks.signal } : {}), ...(hooks.progress ? { progress: hooks.progress } : {}) };
  for (let p = 0; p < passes && !hooks.signal?.aborted; p++) {
    for (const who of p % 2 === 0 ? (["kiln", "peer"] as const) : (["peer", "kiln"] as const)) {
      for (const [i, shape] of opts.levels.entries()) {
        const requests = hooks.requestsFor?.(shape) ?? opts.requests;
        const report = await runBenchServe({ ...target[who], levels: [shape], ...(requests === undefined ? {} : { requests }), warmup: p === 0 && i === 0 ? opts.warmup : 0 }, base);
        const l = report.levels[0];
        if (!l) return [];
        points[i]![who].push({ outputTokensPerS: l.outputTokensPerS, ttftP50Ms: l.ttftMs.p50 ?? Number.NaN, ttftP99Ms: l.ttftMs.p99 ?? Number.NaN, errors: l.errors });
        hooks.onLevel?.(p, who, l);
      }
    }
  }
  return opts.levels.map((shape, i) => compareServe(shapeLabel(shape), hooks.requestsFor?.(shape) ?? opts.requests ?? 0, points[i]!.kiln, points[i]!.peer));
}
