// generation.ts: running one API request's choices through the engine and answering, for both
// endpoints: the choices run concurrently and their chunks are merged as they come; errors the engine
// raises before any output become an HTTP error status, later ones an SSE error event; a streamed
// response goes out as SSE events, a plain one as one JSON body; usage is summed (each prompt counted
// once); a client that goes away aborts every choice. The endpoint's own JSON shapes come from a
// ResponseFormat (completions.ts, chat.ts). It does not parse requests or route.

import { setMaxListeners } from "node:events";
import type { ServerResponse } from "node:http";
import type { ChunkLogprob, EngineClient, EngineFinishReason, GenerateChunk, GenerateRequest } from "../engine_client.js";
import { EngineError } from "../engine_client.js";
import type { ApiError } from "./errors.js";
import { fromEngineError, internalError } from "./errors.js";
import { SseWriter, sendJson } from "./http_io.js";
import type { RequestRecord, ServerMetrics } from "./server_metrics.js";
import type { EnginePlan, Endpoint } from "./to_engine.js";
import { apiParamName } from "./to_engine.js";

export interface ChoiceEvent {
  readonly index: number;
  readonly chunk: GenerateChunk;
}

export interface ChoiceResult {
  text: string;
  readonly logprobs: ChunkLogprob[];
  finishReason: EngineFinishReason | undefined;
}

export interface UsageBody {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

/** How one endpoint shapes its output (ids, object names, deltas). */
export interface ResponseFormat {
  /** Events sent right after the stream's headers (chat: each choice's role). */
  streamStart(choices: number): unknown[];
  /** The event for one chunk of choice `index`; undefined when it carries nothing to send. */
  streamChunk(index: number, chunk: GenerateChunk): unknown;
  /** The last event, when the client asked for usage (stream_options.include_usage). */
  streamUsage(usage: UsageBody): unknown;
  /** The whole answer when not streaming. */
  response(choices: readonly ChoiceResult[], usage: UsageBody): unknown;
}

export interface GenerationContext {
  readonly engine: EngineClient;
  readonly metrics: ServerMetrics;
  readonly res: ServerResponse;
  /** Aborted when the client disconnects or the server stops waiting for it. */
  readonly signal: AbortSignal;
  readonly arrivalMs: number;
  readonly endpoint: Endpoint;
}

export interface GenerationOptions {
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

/**
 * Every request's chunks, tagged with its index, in the order they come. Ending the iteration (or
 * `signal`) aborts the requests still running.
 */
export async function* mergeChoices(engine: EngineClient, requests: readonly GenerateRequest[], signal: AbortSignal): AsyncGenerator<ChoiceEvent> {
  const ctl = new AbortController();
  // Every choice listens on this one signal; Node warns of a leak past 10 listeners unless told how many to expect.
  setMaxListeners(requests.length + 1, ctl.signal);
  const onAbort = () => ctl.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) ctl.abort();
  const its = requests.map((r) => engine.generate(r, ctl.signal)[Symbol.asyncIterator]());
  try {
    if (its.length === 1) yield* single(its[0]!);
    else yield* raced(its);
  } finally {
    signal.removeEventListener("abort", onAbort);
    ctl.abort();
    // NOTE: not awaited: a generator busy in next() runs return() after it, and the abort above ends that next().
    for (const it of its) it.return?.().catch(() => {});
  }
}

/** One choice (the common case): read straight through, without a race per chunk. */
async function* single(it: AsyncIterator<GenerateChunk>): AsyncGenerator<ChoiceEvent> {
  for (let r = await it.next(); !r.done; r = await it.next()) yield { index: 0, chunk: r.value };
}

/** Several choices: whichever has a chunk first. */
async function* raced(its: readonly AsyncIterator<GenerateChunk>[]): AsyncGenerator<ChoiceEvent> {
  const pending = new Map<number, Promise<{ index: number; r: IteratorResult<GenerateChunk> }>>();
  const pull = (index: number) => {
    const p = its[index]!.next().then((r) => ({ index, r }));
    // NOTE: a rejection is read by the race below; this keeps one that comes after we stopped reading from being "unhandled".
    p.catch(() => {});
    pending.set(index, p);
  };
  its.forEach((_, i) => pull(i));
  while (pending.size > 0) {
    const { index, r } = await Promise.race(pending.values());
    if (r.done) {
      pending.delete(index);
      continue;
    }
    pull(index);
    yield { index, chunk: r.value };
  }
}

function usageOf(plan: EnginePlan, results: readonly (GenerateChunk["usage"] | undefined)[]): UsageBody {
  const prompt = new Map<number, number>();
  let completion = 0;
  results.forEach((u, i) => {
    if (!u) return;
    prompt.set(plan.promptIndex[i]!, u.promptTokens);
    completion += u.completionTokens;
  });
  const promptTokens = [...prompt.values()].reduce((a, b) => a + b, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

function toApiError(err: unknown, endpoint: Endpoint): ApiError {
  return err instanceof EngineError ? fromEngineError(err, (p) => apiParamName(p, endpoint)) : internalError(err);
}

/** Run the plan and answer on ctx.res. Throws an ApiError only before anything was sent. */
export async function runGeneration(ctx: GenerationContext, plan: EnginePlan, opts: GenerationOptions, format: ResponseFormat): Promise<void> {
  const n = plan.requests.length;
  const record = ctx.metrics.startRequest(opts.model, ctx.arrivalMs, n);
  const events = mergeChoices(ctx.engine, plan.requests, ctx.signal);
  const usages: (GenerateChunk["usage"] | undefined)[] = new Array(n).fill(undefined);
  let first: IteratorResult<ChoiceEvent>;
  try {
    first = await events.next();
  } catch (err) {
    // NOTE: a refusal (bad input, queue full) is counted by its HTTP status, not as a finished request.
    throw toApiError(err, ctx.endpoint);
  }
  const take = (e: ChoiceEvent) => {
    record.chunk(e.index, e.chunk);
    if (e.chunk.usage) usages[e.index] = e.chunk.usage;
  };
  try {
    if (opts.stream) await stream(ctx, plan, opts, format, record, first, events, take, usages);
    else await collect(ctx, plan, format, record, first, events, take, usages);
  } finally {
    if (ctx.signal.aborted) record.endUnfinished("abort");
    await events.return(undefined);
  }
}

type Take = (e: ChoiceEvent) => void;
type Usages = (GenerateChunk["usage"] | undefined)[];

async function stream(
  ctx: GenerationContext, plan: EnginePlan, opts: GenerationOptions, format: ResponseFormat, record: RequestRecord,
  first: IteratorResult<ChoiceEvent>, events: AsyncGenerator<ChoiceEvent>, take: Take, usages: Usages,
): Promise<void> {
  const sse = new SseWriter(ctx.res);
  sse.start();
  for (const e of format.streamStart(plan.requests.length)) await sse.send(e);
  let next = first;
  try {
    while (!next.done && !ctx.signal.aborted) {
      take(next.value);
      const out = format.streamChunk(next.value.index, next.value.chunk);
      if (out !== undefined) await sse.send(out);
      next = await events.next();
    }
  } catch (err) {
    // NOTE: the status line is gone already: the error travels as an event, as OpenAI and vLLM send it.
    record.endUnfinished("error");
    await sse.send(toApiError(err, ctx.endpoint).body());
  }
  if (ctx.signal.aborted) return;
  if (opts.includeUsage) await sse.send(format.streamUsage(usageOf(plan, usages)));
  sse.done();
}

async function collect(
  ctx: GenerationContext, plan: EnginePlan, format: ResponseFormat, record: RequestRecord,
  first: IteratorResult<ChoiceEvent>, events: AsyncGenerator<ChoiceEvent>, take: Take, usages: Usages,
): Promise<void> {
  const results: ChoiceResult[] = plan.requests.map(() => ({ text: "", logprobs: [], finishReason: undefined }));
  try {
    for (let next = first; !next.done && !ctx.signal.aborted; next = await events.next()) {
      const { index, chunk } = next.value;
      take(next.value);
      const r = results[index]!;
      r.text += chunk.textDelta;
      if (chunk.logprobs) r.logprobs.push(...chunk.logprobs);
      if (chunk.finishReason) r.finishReason = chunk.finishReason;
    }
  } catch (err) {
    record.endUnfinished("error");
    throw toApiError(err, ctx.endpoint);
  }
  if (ctx.signal.aborted) return;
  sendJson(ctx.res, 200, format.response(results, usageOf(plan, usages)));
}
