// request.ts: one timed request of `kiln bench serve` to an OpenAI-compatible server, with plain fetch:
// the body (completions or chat, streaming or not), the time to the first content, the time per
// output token, the end-to-end latency, the output token count (the server's usage when it sends one,
// else the content chunks), and what went wrong (HTTP status, network, timeout, a malformed stream).
// It never throws and never follows redirects: only the given URL is contacted. Scheduling requests is
// run_level.ts's job.

import { SseError, sseData } from "../serve/sse_reader.js";

export type Endpoint = "completions" | "chat";
export const ENDPOINTS: readonly Endpoint[] = ["completions", "chat"];

/** Where requests go and what they ask for (the same for every request of a run but the prompt). */
export interface RequestSpec {
  /** The API's base URL, e.g. http://127.0.0.1:8080/v1 (the endpoint's path is appended). */
  readonly url: string;
  readonly endpoint: Endpoint;
  readonly model: string;
  readonly apiKey?: string;
  /** Stream over SSE (the default); without it TTFT and TPOT cannot be measured. */
  readonly stream: boolean;
  /** Ask for stream_options.include_usage, so output tokens are the server's count. */
  readonly includeUsage: boolean;
  readonly maxTokens: number;
  /** vLLM's extension (kiln serve has it): generate through end-of-sequence, so outputs are maxTokens long. */
  readonly ignoreEos: boolean;
  readonly temperature: number;
  /** Each request is aborted after this long (a timeout error). */
  readonly timeoutMs: number;
}

export type ErrorKind = "http" | "network" | "timeout" | "aborted" | "stream" | "protocol";

export interface RequestError {
  readonly kind: ErrorKind;
  /** The HTTP status, for kind "http". */
  readonly status?: number;
  readonly message: string;
}

/** One request's measurements; times in ms. */
export interface RequestResult {
  /** Order in which the level issued it (0-based). */
  readonly index: number;
  /** When it was sent, from the level's start. */
  readonly startMs: number;
  /** Until the first chunk with content; null when none came or not streaming. */
  readonly ttftMs: number | null;
  /** Mean time per output token after the first: (end - first) / (tokens - 1); null below 2 tokens. */
  readonly tpotMs: number | null;
  readonly e2eMs: number;
  /** Output tokens received (partial for a failed stream; only successes count in the report). */
  readonly outputTokens: number;
  /** Whether outputTokens is the server's usage count or the number of content chunks. */
  readonly tokensFrom: "usage" | "chunks";
  readonly error?: RequestError;
}

/** How much of an error response's body is read for its message. */
const MAX_ERROR_BODY = 64 * 1024;

export function endpointUrl(spec: Pick<RequestSpec, "url" | "endpoint">): string {
  return `${spec.url.replace(/\/+$/, "")}/${spec.endpoint === "chat" ? "chat/completions" : "completions"}`;
}

export function headers(apiKey: string | undefined): Record<string, string> {
  return { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) };
}

export function requestBody(spec: RequestSpec, prompt: string): Record<string, unknown> {
  return {
    model: spec.model,
    ...(spec.endpoint === "chat" ? { messages: [{ role: "user", content: prompt }] } : { prompt }),
    max_tokens: spec.maxTokens,
    temperature: spec.temperature,
    ...(spec.ignoreEos ? { ignore_eos: true } : {}),
    stream: spec.stream,
    ...(spec.stream && spec.includeUsage ? { stream_options: { include_usage: true } } : {}),
  };
}

/** What a stream or a response said so far. */
interface Tally {
  first: number | undefined;
  chunks: number;
  usageTokens: number | undefined;
}

class RequestFailure extends Error {
  constructor(readonly error: RequestError) {
    super(error.message);
  }
}

/** Send one request and measure it. `levelStart` is the performance.now() that startMs counts from. */
export async function sendRequest(spec: RequestSpec, prompt: string, index: number, levelStart: number, signal: AbortSignal): Promise<RequestResult> {
  const timeout = AbortSignal.timeout(spec.timeoutMs);
  const t0 = performance.now();
  const tally: Tally = { first: undefined, chunks: 0, usageTokens: undefined };
  let error: RequestError | undefined;
  try {
    const res = await fetch(endpointUrl(spec), {
      method: "POST",
      headers: headers(spec.apiKey),
      body: JSON.stringify(requestBody(spec, prompt)),
      signal: AbortSignal.any([signal, timeout]),
      // NOTE: a redirect would contact another URL than the one given; it is reported as an HTTP error.
      redirect: "manual",
    });
    if (res.status < 200 || res.status > 299) throw new RequestFailure({ kind: "http", status: res.status, message: await errorMessage(res) });
    if (!res.body) throw new RequestFailure({ kind: "protocol", message: "the response has no body" });
    if (spec.stream) await readStream(spec, res.body, tally);
    else await readWhole(res, tally);
  } catch (err) {
    error = err instanceof RequestFailure ? err.error : classify(err, signal, timeout, spec.timeoutMs);
  }
  const end = performance.now();
  const tokens = tally.usageTokens ?? tally.chunks;
  const first = tally.first;
  return {
    index,
    startMs: t0 - levelStart,
    ttftMs: first === undefined ? null : first - t0,
    tpotMs: first !== undefined && tokens > 1 ? (end - first) / (tokens - 1) : null,
    e2eMs: end - t0,
    outputTokens: tokens,
    tokensFrom: tally.usageTokens === undefined ? "chunks" : "usage",
    ...(error ? { error } : {}),
  };
}

async function readStream(spec: RequestSpec, body: ReadableStream<Uint8Array>, tally: Tally): Promise<void> {
  let events = 0;
  for await (const data of sseData(body)) {
    events++;
    if (data.trim() === "[DONE]") return;
    const obj = parseJson(data, "a stream event");
    if (obj.error !== undefined) throw new RequestFailure({ kind: "stream", message: `the stream carried an error: ${describeError(obj.error)}` });
    const usage = completionTokens(obj.usage);
    if (usage !== undefined) tally.usageTokens = usage;
    const choice = Array.isArray(obj.choices) ? (obj.choices[0] as Record<string, unknown> | undefined) : undefined;
    if (!choice) continue;
    const text = spec.endpoint === "chat" ? (choice.delta as { content?: unknown } | undefined)?.content : choice.text;
    if (typeof text === "string" && text !== "") {
      tally.first ??= performance.now();
      tally.chunks++;
    }
  }
  if (events === 0) throw new RequestFailure({ kind: "protocol", message: "the stream ended without any server-sent event" });
}

async function readWhole(res: Response, tally: Tally): Promise<void> {
  const obj = parseJson(await res.text(), "the response");
  const tokens = completionTokens(obj.usage);
  if (tokens === undefined) throw new RequestFailure({ kind: "protocol", message: "the response has no usage.completion_tokens" });
  tally.usageTokens = tokens;
}

function parseJson(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RequestFailure({ kind: "protocol", message: `${what} is not JSON: ${clip(text)}` });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new RequestFailure({ kind: "protocol", message: `${what} is not a JSON object: ${clip(text)}` });
  return v as Record<string, unknown>;
}

function completionTokens(usage: unknown): number | undefined {
  const n = (usage as { completion_tokens?: unknown } | null | undefined)?.completion_tokens;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** The message of an OpenAI-style error ({error: {message}}), or the body's start. */
async function errorMessage(res: Response): Promise<string> {
  const text = await boundedText(res).catch((err: unknown) => `(the body could not be read: ${(err as Error).message})`);
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    if (e !== undefined) return describeError(e);
  } catch {
    // not JSON: the text itself
  }
  return text === "" ? res.statusText || `HTTP ${res.status}` : clip(text);
}

function describeError(e: unknown): string {
  if (typeof e === "string") return e;
  const m = (e as { message?: unknown } | null)?.message;
  return typeof m === "string" ? m : clip(JSON.stringify(e));
}

async function boundedText(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ERROR_BODY) {
      const r = await reader.read();
      if (r.done) break;
      parts.push(r.value);
      size += r.value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(parts).subarray(0, MAX_ERROR_BODY));
}

const clip = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}...` : s);

function classify(err: unknown, signal: AbortSignal, timeout: AbortSignal, timeoutMs: number): RequestError {
  if (err instanceof SseError) return { kind: "protocol", message: err.message };
  if (timeout.aborted && !signal.aborted) return { kind: "timeout", message: `no complete response within the request timeout (${timeoutMs / 1000} s)` };
  if (signal.aborted) return { kind: "aborted", message: "the run was stopped" };
  // NOTE: undici's "fetch failed" hides the reason (ECONNREFUSED, a reset) in err.cause.
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return { kind: "network", message: cause ? `${e.message}: ${cause}` : (e.message ?? String(err)) };
}
