// server_metrics.ts: the metrics `kiln serve` exposes on /metrics (names follow vLLM's, with a kiln_
// prefix): HTTP requests by route and status; per engine request, time to first token, time per output
// token and end-to-end latency histograms, prompt and generated token counters and finish reasons;
// and, read from the engine at scrape time, running / waiting / preempted requests, KV cache usage and
// prefix-cache hit rate, and speculative decoding's draft and accepted tokens, acceptance rate and mean
// acceptance length (tokens per target forward of a speculating sequence). It owns what is measured and when; the text format is metrics_registry.ts's.

import type { EngineFinishReason, EngineStats, GenerateChunk, SpeculativeCounters } from "../engine_client.js";
import { Counter, Gauge, Histogram, MetricsRegistry } from "./metrics_registry.js";

const TTFT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TPOT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];
const E2E_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120];

export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly httpRequests = this.registry.register(new Counter("kiln_http_requests_total", "HTTP requests by route and response status code.", ["route", "status"]));
  readonly finished = this.registry.register(new Counter("kiln_request_finished_total", "Engine requests (one per choice) by finish reason (stop, length, abort, error).", ["model_name", "finished_reason"]));
  readonly promptTokens = this.registry.register(new Counter("kiln_prompt_tokens_total", "Prompt tokens of finished engine requests.", ["model_name"]));
  readonly generationTokens = this.registry.register(new Counter("kiln_generation_tokens_total", "Generated tokens.", ["model_name"]));
  readonly ttft = this.registry.register(new Histogram("kiln_time_to_first_token_seconds", "Time from receiving the HTTP request to the first generated token.", TTFT_BUCKETS, ["model_name"]));
  readonly tpot = this.registry.register(new Histogram("kiln_time_per_output_token_seconds", "Mean time between generated tokens after the first, per request.", TPOT_BUCKETS, ["model_name"]));
  readonly e2e = this.registry.register(new Histogram("kiln_e2e_request_latency_seconds", "Time from receiving the HTTP request to the last token.", E2E_BUCKETS, ["model_name"]));
  private readonly running = this.registry.register(new Gauge("kiln_num_requests_running", "Engine requests running now."));
  private readonly waiting = this.registry.register(new Gauge("kiln_num_requests_waiting", "Engine requests waiting to run."));
  private readonly preempted = this.registry.register(new Gauge("kiln_num_requests_preempted", "Engine requests preempted and waiting to be recomputed."));
  private readonly kvUsage = this.registry.register(new Gauge("kiln_kv_cache_usage_ratio", "Fraction of KV cache blocks in use."));
  private readonly kvBlocks = this.registry.register(new Gauge("kiln_kv_cache_blocks", "KV cache blocks over every model."));
  private readonly kvBytes = this.registry.register(new Gauge("kiln_kv_cache_bytes", "Device bytes of the KV caches over every model."));
  private readonly kvUnused = this.registry.register(new Gauge("kiln_kv_cache_unused_slots", "Internal fragmentation: allocated KV token slots that no token fills."));
  private readonly kvTail = this.registry.register(new Gauge("kiln_kv_cache_tail_free_blocks", "Free KV blocks above the highest live block (a shrink releases them without moving data)."));
  private readonly kvHoles = this.registry.register(new Gauge("kiln_kv_cache_hole_blocks", "Free KV blocks below the highest live block (compaction moves live blocks into them)."));
  private readonly prefixHit = this.registry.register(new Gauge("kiln_prefix_cache_hit_rate", "Fraction of prompt tokens served from the prefix cache."));
  private readonly specCounters = {
    numDrafts: new Counter("kiln_spec_decode_num_drafts_total", "Speculative decoding: sequence-steps that verified draft tokens."),
    numDraftTokens: new Counter("kiln_spec_decode_num_draft_tokens_total", "Speculative decoding: draft tokens proposed and verified."),
    numAcceptedTokens: new Counter("kiln_spec_decode_num_accepted_tokens_total", "Speculative decoding: draft tokens accepted."),
    numEmittedTokens: new Counter("kiln_spec_decode_num_emitted_tokens_total", "Speculative decoding: tokens emitted by verifying steps (accepted + one each)."),
    draftSeconds: new Counter("kiln_spec_decode_draft_seconds_total", "Speculative decoding: time spent drafting."),
  };
  private readonly specAcceptance = new Gauge("kiln_spec_decode_acceptance_rate", "Speculative decoding: accepted / draft tokens since start.");
  private readonly specLength = new Gauge("kiln_spec_decode_mean_acceptance_length", "Speculative decoding: tokens per target forward of a speculating sequence since start (its speed-up in target forwards; 1 = none).");
  /** The engine's speculative counters at the last scrape (the Prometheus counters grow by the difference). */
  private specSeen: SpeculativeCounters | undefined;

  /** The exposition text, with the engine's gauges as of `stats` (those it does not report are left out). */
  render(stats: EngineStats): string {
    this.running.set({}, stats.running);
    this.waiting.set({}, stats.waiting);
    if (stats.preempted !== undefined) this.preempted.set({}, stats.preempted);
    if (stats.kvCacheUsage !== undefined) this.kvUsage.set({}, stats.kvCacheUsage);
    if (stats.prefixCacheHitRate !== undefined) this.prefixHit.set({}, stats.prefixCacheHitRate);
    const kv = [[this.kvBlocks, stats.kvBlocks], [this.kvBytes, stats.kvBytes], [this.kvUnused, stats.kvUnusedSlots], [this.kvTail, stats.kvTailFreeBlocks], [this.kvHoles, stats.kvHoleBlocks]] as const;
    for (const [g, v] of kv) if (v !== undefined) g.set({}, v);
    if (stats.speculative) this.renderSpeculative(stats.speculative);
    return this.registry.render();
  }

  private renderSpeculative(s: SpeculativeCounters): void {
    if (this.specSeen === undefined) {
      // NOTE: registered at the first scrape with speculation on, so servers without it show none of these.
      for (const c of Object.values(this.specCounters)) this.registry.register(c);
      this.registry.register(this.specAcceptance);
      this.registry.register(this.specLength);
    }
    for (const key of Object.keys(this.specCounters) as (keyof SpeculativeCounters)[]) {
      this.specCounters[key].inc({}, Math.max(0, s[key] - (this.specSeen?.[key] ?? 0)));
    }
    this.specSeen = s;
    this.specAcceptance.set({}, s.numDraftTokens > 0 ? s.numAcceptedTokens / s.numDraftTokens : 0);
    this.specLength.set({}, s.numDrafts > 0 ? s.numEmittedTokens / s.numDrafts : 1);
  }

  /** Start timing one API request of `choices` engine requests that arrived at `arrivalMs` (performance.now()). */
  startRequest(model: string, arrivalMs: number, choices: number): RequestRecord {
    return new RequestRecord(this, model, arrivalMs, choices);
  }
}

/** The timing of one API request's choices, fed every chunk as it arrives. */
export class RequestRecord {
  private readonly firstAt = new Map<number, number>();
  private readonly done = new Set<number>();
  private readonly labels: { model_name: string };

  constructor(private readonly m: ServerMetrics, model: string, private readonly arrivalMs: number, private readonly choices: number) {
    this.labels = { model_name: model };
  }

  chunk(index: number, chunk: GenerateChunk): void {
    const now = performance.now();
    if (chunk.tokenIds.length > 0 && !this.firstAt.has(index)) {
      this.firstAt.set(index, now);
      this.m.ttft.observe(this.labels, (now - this.arrivalMs) / 1000);
    }
    if (!chunk.finishReason || this.done.has(index)) return;
    this.finish(index, chunk.finishReason);
    const usage = chunk.usage;
    if (!usage) return;
    this.m.promptTokens.inc(this.labels, usage.promptTokens);
    this.m.generationTokens.inc(this.labels, usage.completionTokens);
    if (chunk.finishReason === "abort") return;
    this.m.e2e.observe(this.labels, (now - this.arrivalMs) / 1000);
    const first = this.firstAt.get(index);
    if (first !== undefined && usage.completionTokens > 1) this.m.tpot.observe(this.labels, (now - first) / 1000 / (usage.completionTokens - 1));
  }

  /** The request ended before these choices finished (client gone: "abort"; engine failure: "error"). */
  endUnfinished(reason: "abort" | "error"): void {
    for (let i = 0; i < this.choices; i++) if (!this.done.has(i)) this.finish(i, reason);
  }

  private finish(index: number, reason: EngineFinishReason | "error"): void {
    this.done.add(index);
    this.m.finished.inc({ ...this.labels, finished_reason: reason });
  }
}
