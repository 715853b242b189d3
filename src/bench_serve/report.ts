// report.ts: what `kiln bench serve` reports: each level's summary (requests/s, output tokens/s, TTFT,
// TPOT and end-to-end percentiles, errors by kind) computed from its request results, the whole run
// as plain JSON-able data, and the run as a markdown table. Only successful requests enter the
// throughput and latency figures; failed ones are counted as errors, by kind, with a sample message.

import { assertNever } from "../core/ops.js";
import type { Summary } from "./percentiles.js";
import { summarize } from "./percentiles.js";
import type { Endpoint, RequestError, RequestResult } from "./request.js";
import type { LevelRun, LoadShape } from "./run_level.js";

export interface ErrorTally {
  readonly count: number;
  /** One of the messages, to say what went wrong. */
  readonly message: string;
}

export interface LevelReport {
  /** "concurrency 8" or "rate 5/s". */
  readonly label: string;
  readonly mode: LoadShape["mode"];
  /** Closed loop: the number of workers. */
  readonly concurrency?: number;
  /** Open loop: requests/s offered. */
  readonly rate?: number;
  /** Requests sent = successes + errors. */
  readonly requests: number;
  readonly successes: number;
  readonly errors: number;
  readonly errorRate: number;
  /** Errors by kind ("http 404", "network", "timeout", "aborted", "stream", "protocol"). */
  readonly errorsByKind: Readonly<Record<string, ErrorTally>>;
  /** From the level's start to the end of its last request. */
  readonly durationS: number;
  /** Successful requests per second of duration. */
  readonly requestsPerS: number;
  /** Output tokens of the successful requests. */
  readonly outputTokens: number;
  readonly outputTokensPerS: number;
  /** Whether the token counts are the server's usage, content chunks, or both (some requests each). */
  readonly tokensFrom: "usage" | "chunks" | "mixed" | "none";
  readonly ttftMs: Summary;
  readonly tpotMs: Summary;
  readonly e2eMs: Summary;
  readonly results: readonly RequestResult[];
}

/** What the run asked for (the resolved settings). */
export interface RunSettings {
  readonly url: string;
  readonly endpoint: Endpoint;
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly maxTokens: number;
  readonly ignoreEos: boolean;
  readonly temperature: number;
  readonly prompts: number;
  /** The first prompt, cut to 80 characters. */
  readonly firstPrompt: string;
  readonly requestsPerLevel: number | null;
  readonly durationS: number | null;
  readonly seed: number;
  readonly warmup: number;
  readonly timeoutS: number;
}

export interface BenchReport {
  readonly tool: "kiln bench serve";
  readonly startedAt: string;
  readonly settings: RunSettings;
  /** Warm-up requests (not in any level) and how many failed. */
  readonly warmup: { readonly requests: number; readonly errors: number };
  /** True when the run was stopped early (Ctrl-C): its last level is partial. */
  readonly stopped: boolean;
  readonly levels: readonly LevelReport[];
}

export function shapeLabel(shape: LoadShape): string {
  switch (shape.mode) {
    case "concurrency":
      return `concurrency ${shape.concurrency}`;
    case "rate":
      return `rate ${shape.rate}/s`;
    default:
      return assertNever(shape, "load shape");
  }
}

export const errorKey = (e: RequestError): string => (e.kind === "http" ? `http ${e.status}` : e.kind);

export function levelReport(run: LevelRun): LevelReport {
  const ok = run.results.filter((r) => !r.error);
  const errorsByKind: Record<string, ErrorTally> = {};
  for (const r of run.results) {
    if (!r.error) continue;
    const key = errorKey(r.error);
    errorsByKind[key] = { count: (errorsByKind[key]?.count ?? 0) + 1, message: errorsByKind[key]?.message ?? r.error.message };
  }
  const durationS = run.elapsedMs / 1000;
  const outputTokens = ok.reduce((s, r) => s + r.outputTokens, 0);
  const per = (n: number) => (durationS > 0 ? n / durationS : 0);
  const from = new Set(ok.map((r) => r.tokensFrom));
  const shape = run.shape;
  return {
    label: shapeLabel(shape),
    mode: shape.mode,
    ...(shape.mode === "concurrency" ? { concurrency: shape.concurrency } : { rate: shape.rate }),
    requests: run.results.length,
    successes: ok.length,
    errors: run.results.length - ok.length,
    errorRate: run.results.length === 0 ? 0 : (run.results.length - ok.length) / run.results.length,
    errorsByKind,
    durationS,
    requestsPerS: per(ok.length),
    outputTokens,
    outputTokensPerS: per(outputTokens),
    tokensFrom: from.size === 0 ? "none" : from.size > 1 ? "mixed" : [...from][0]!,
    ttftMs: summarize(ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs]))),
    tpotMs: summarize(ok.flatMap((r) => (r.tpotMs === null ? [] : [r.tpotMs]))),
    e2eMs: summarize(ok.map((r) => r.e2eMs)),
    results: run.results,
  };
}

const ms = (v: number | null) => (v === null ? "-" : v.toFixed(1));
const pct = (v: number) => `${(v * 100).toFixed(v === 0 || v === 1 ? 0 : 1)}%`;

/** The report as markdown: a line on the settings, the table, then one line per kind of error. */
export function markdownReport(r: BenchReport): string {
  const s = r.settings;
  const what = [
    `${s.model} at ${s.url} (${s.endpoint})`,
    s.stream ? "streaming" : "not streaming",
    `max_tokens ${s.maxTokens}${s.ignoreEos ? " (ignore_eos)" : ""}`,
    `temperature ${s.temperature}`,
    s.prompts === 1 ? `prompt ${JSON.stringify(s.firstPrompt)}` : `${s.prompts} prompts`,
  ].join(", ");
  const header = ["load", "requests", "errors", "req/s", "output tok/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "E2E p50 ms", "E2E p99 ms"];
  const rows = r.levels.map((l) => [
    l.label, String(l.requests), `${l.errors} (${pct(l.errorRate)})`, l.requestsPerS.toFixed(2), l.outputTokensPerS.toFixed(1),
    ms(l.ttftMs.p50), ms(l.ttftMs.p99), ms(l.tpotMs.p50), ms(l.tpotMs.p99), ms(l.e2eMs.p50), ms(l.e2eMs.p99),
  ]);
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const table = [line(header), line(header.map((_, i) => (i < 1 ? "---" : "---:"))), ...rows.map(line)];
  const errors = r.levels.flatMap((l) =>
    Object.entries(l.errorsByKind).map(([kind, e]) => `- ${l.label}: ${e.count} x ${kind}: ${e.message}`),
  );
  const notes = [
    ...(r.stopped ? ["Stopped early: the last level is partial."] : []),
    ...(r.levels.some((l) => l.tokensFrom === "chunks" || l.tokensFrom === "mixed")
      ? ["Output tokens were counted as content chunks where the server sent no usage: a chunk may hold several tokens."]
      : []),
  ];
  return [`kiln bench serve: ${what}`, "", ...table, ...(errors.length ? ["", "Errors:", ...errors] : []), ...(notes.length ? ["", ...notes] : [])].join("\n");
}
