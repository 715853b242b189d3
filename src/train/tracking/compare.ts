// compare.ts: an A/B of two runs as data: the config fields that differ, each metric's final and
// best values with A−B, and one metric at the steps both runs logged. Pure functions over what the
// store returns; printing is the CLI's.

import type { Series } from "./run_store.js";

export interface ConfigChange {
  /** Dotted path into the config: optimizer.lr */
  readonly key: string;
  /** JSON text of the value; undefined where that run's config lacks the field. */
  readonly a: string | undefined;
  readonly b: string | undefined;
}

/** Leaves of a JSON object by dotted path (arrays are leaves: compared whole). */
function flatten(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** Only the config fields whose values differ between A and B, sorted by path. */
export function configDiff(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): ConfigChange[] {
  const fa = flatten(a, "", new Map());
  const fb = flatten(b, "", new Map());
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  return keys.filter((k) => fa.get(k) !== fb.get(k)).map((k) => ({ key: k, a: fa.get(k), b: fb.get(k) }));
}

/** Whether a lower or a higher value of a metric is better, or neither (lr, loss scale): by its name. */
export function betterDirection(key: string): "lower" | "higher" | undefined {
  if (/loss|perplexity|ppl|grad_norm|time|_ms$|_s$|mem|bytes/.test(key) && !/per_s$/.test(key)) return "lower";
  if (/per_s$|mfu|acc|throughput/.test(key)) return "higher";
  return undefined;
}

export interface MetricSummary {
  /** Last logged [step, value]. */
  readonly final: readonly [number, number] | undefined;
  /** Best finite [step, value] by betterDirection; undefined where the metric has no direction. */
  readonly best: readonly [number, number] | undefined;
}

export function summarize(key: string, s: Series): MetricSummary {
  const dir = betterDirection(key);
  let best: readonly [number, number] | undefined;
  if (dir) {
    for (const p of s) {
      if (!Number.isFinite(p[1])) continue;
      if (!best || (dir === "lower" ? p[1] < best[1] : p[1] > best[1])) best = p;
    }
  }
  return { final: s[s.length - 1], best };
}

/**
 * Rows [step, a, b] at steps both series logged: at most `maxRows`, spread evenly from the first
 * common step to the last (both always included).
 */
export function alignedSteps(a: Series, b: Series, maxRows: number): [number, number, number][] {
  const bAt = new Map(b.map(([s, v]) => [s, v]));
  const common = a.filter(([s]) => bAt.has(s)).map(([s, v]) => [s, v, bAt.get(s)!] as [number, number, number]);
  if (common.length <= maxRows) return common;
  const picked = new Set<number>();
  for (let i = 0; i < maxRows; i++) picked.add(Math.round((i * (common.length - 1)) / (maxRows - 1)));
  return [...picked].sort((x, y) => x - y).map((i) => common[i]!);
}
