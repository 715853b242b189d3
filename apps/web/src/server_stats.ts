// server_stats.ts: an OpenAI-compatible server's EngineStats, read from its Prometheus /metrics text:
// kiln serve's gauges (kiln_num_requests_running, ..., kiln_kv_cache_usage_ratio), or vLLM's
// (vllm:num_requests_running, ...). It parses only the sample lines it needs; what /metrics holds is
// the server's business (src/serve/openai/server_metrics.ts for kiln).

import type { EngineStats } from "../../../src/web.js";

/** Where each stat may be found, first match wins: kiln's name, then vLLM's. */
const NAMES = {
  running: ["kiln_num_requests_running", "vllm:num_requests_running"],
  waiting: ["kiln_num_requests_waiting", "vllm:num_requests_waiting"],
  preempted: ["kiln_num_requests_preempted"],
  kvCacheUsage: ["kiln_kv_cache_usage_ratio", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
  prefixCacheHitRate: ["kiln_prefix_cache_hit_rate"],
} as const;

/** A sample line: name, optional {labels}, value (a timestamp may follow). */
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/;

/**
 * The stats in a /metrics text, or undefined when it has no request gauges (not kiln's or vLLM's
 * metrics). Counts of several series (vLLM labels each model) add up; a ratio takes the largest.
 */
export function statsFromMetrics(text: string): EngineStats | undefined {
  const sums = new Map<string, number>();
  const maxes = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = SAMPLE.exec(line.trim());
    if (!m) continue;
    const v = Number(m[2]);
    if (!Number.isFinite(v)) continue;
    sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + v);
    maxes.set(m[1]!, Math.max(maxes.get(m[1]!) ?? -Infinity, v));
  }
  const find = (names: readonly string[], from: Map<string, number>) => names.map((n) => from.get(n)).find((v) => v !== undefined);
  const running = find(NAMES.running, sums);
  const waiting = find(NAMES.waiting, sums);
  if (running === undefined || waiting === undefined) return undefined;
  const preempted = find(NAMES.preempted, sums);
  const kvCacheUsage = find(NAMES.kvCacheUsage, maxes);
  const prefixCacheHitRate = find(NAMES.prefixCacheHitRate, maxes);
  return {
    running, waiting,
    ...(preempted === undefined ? {} : { preempted }),
    ...(kvCacheUsage === undefined ? {} : { kvCacheUsage }),
    ...(prefixCacheHitRate === undefined ? {} : { prefixCacheHitRate }),
  };
}
