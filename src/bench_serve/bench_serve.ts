// bench_serve.ts: a whole `kiln bench serve` run, in process: find the model when none is named (GET
// <url>/models), send the warm-up requests, run each load level in turn (closed-loop concurrency levels,
// then open-loop rates) with progress on a sink, and return the report. Nothing here prints results or
// reads flags (src/cli/bench_serve_command.ts does); the only URL contacted is the one given.

import type { BenchReport, LevelReport } from "./report.js";
import { levelReport, shapeLabel } from "./report.js";
import type { ProgressSink } from "./progress.js";
import { levelProgress } from "./progress.js";
import type { RequestSpec } from "./request.js";
import { headers, sendRequest } from "./request.js";
import type { LoadShape } from "./run_level.js";
import { runLevel } from "./run_level.js";

/** Requests per level when neither a count nor a duration is given. */
export const DEFAULT_REQUESTS = 64;
/** The cap on requests of a level limited by duration only. */
export const MAX_REQUESTS = 1_000_000;

export interface BenchServeOptions extends Omit<RequestSpec, "model"> {
  /** Undefined: the first model the server lists. */
  readonly model?: string;
  /** Used in turn: request i of a level sends prompts[i % prompts.length]. */
  readonly prompts: readonly string[];
  readonly levels: readonly LoadShape[];
  /** Per level; with durationS, whichever comes first. */
  readonly requests?: number;
  readonly durationS?: number;
  /** Seed of the open-loop arrival times (the same at every rate). */
  readonly seed: number;
  /** Requests sent one at a time before the first level and left out of the report. */
  readonly warmup: number;
}

export interface BenchServeHooks {
  /** Aborting stops the run: requests in flight are aborted and the report covers what ran. */
  readonly signal?: AbortSignal;
  /** Where progress goes (undefined: nowhere). */
  readonly progress?: ProgressSink;
}

export async function runBenchServe(opts: BenchServeOptions, hooks: BenchServeHooks = {}): Promise<BenchReport> {
  if (opts.prompts.length === 0) throw new Error("kiln bench serve: no prompts");
  const signal = hooks.signal ?? new AbortController().signal;
  const startedAt = new Date().toISOString();
  const model = opts.model ?? (await firstModel(opts, signal));
  const spec: RequestSpec = { ...opts, model };
  const prompt = (i: number) => opts.prompts[i % opts.prompts.length]!;

  let warmupErrors = 0;
  for (let i = 0; i < opts.warmup && !signal.aborted; i++) {
    if ((await sendRequest(spec, prompt(i), i, performance.now(), signal)).error) warmupErrors++;
  }

  const requests = opts.requests ?? (opts.durationS === undefined ? DEFAULT_REQUESTS : MAX_REQUESTS);
  const durationMs = opts.durationS === undefined ? undefined : opts.durationS * 1000;
  const levels: LevelReport[] = [];
  for (const shape of opts.levels) {
    if (signal.aborted) break;
    const label = shapeLabel(shape);
    const shown = opts.requests ?? (durationMs === undefined ? requests : undefined);
    const progress = hooks.progress ? levelProgress(hooks.progress, label, shown, durationMs) : undefined;
    const run = await runLevel(shape, { requests, ...(durationMs === undefined ? {} : { durationMs }) }, (i, t0) => sendRequest(spec, prompt(i), i, t0, signal), {
      signal,
      seed: opts.seed,
      ...(progress ? { onResult: (r) => progress.result(r) } : {}),
    });
    progress?.finish();
    levels.push(levelReport(run));
  }

  return {
    tool: "kiln bench serve",
    startedAt,
    settings: {
      url: opts.url, endpoint: opts.endpoint, model, stream: opts.stream, includeUsage: opts.stream && opts.includeUsage,
      maxTokens: opts.maxTokens, ignoreEos: opts.ignoreEos, temperature: opts.temperature,
      prompts: opts.prompts.length, firstPrompt: opts.prompts[0]!.slice(0, 80),
      requestsPerLevel: opts.requests ?? (opts.durationS === undefined ? DEFAULT_REQUESTS : null),
      durationS: opts.durationS ?? null, seed: opts.seed, warmup: opts.warmup, timeoutS: opts.timeoutMs / 1000,
    },
    warmup: { requests: opts.warmup, errors: warmupErrors },
    stopped: signal.aborted,
    levels,
  };
}

/** The first model id of GET <url>/models; throws an Error that says what the server answered. */
export async function firstModel(opts: { url: string; apiKey?: string; timeoutMs: number }, signal: AbortSignal): Promise<string> {
  const url = `${opts.url.replace(/\/+$/, "")}/models`;
  const fail = (why: string) => new Error(`cannot find the model to use from GET ${url} (give --model): ${why}`);
  let res: Response;
  try {
    res = await fetch(url, { headers: headers(opts.apiKey), signal: AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs)]), redirect: "manual" });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    throw fail(`${e.message}${e.cause ? `: ${e.cause.code ?? e.cause.message}` : ""}`);
  }
  const text = await res.text().catch(() => "");
  if (!res.ok) throw fail(`HTTP ${res.status} ${text.slice(0, 200)}`);
  let id: unknown;
  try {
    id = (JSON.parse(text) as { data?: { id?: unknown }[] }).data?.[0]?.id;
  } catch {
    throw fail(`the answer is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof id !== "string" || id === "") throw fail("the server lists no model");
  return id;
}
