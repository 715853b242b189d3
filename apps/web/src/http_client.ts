// http_client.ts: EngineClient over an OpenAI-compatible server (`kiln serve`, or any other), so the
// page sends a prompt to a server exactly as it sends one to its in-browser engine. Streams over SSE
// (/v1/completions or /v1/chat/completions, read by kiln's one SSE reader), maps OpenAI's errors back
// to EngineError codes, aborts a request by closing its connection (the server then frees it), and
// reads stats from the server's /metrics. Plain fetch, no DOM: it runs in Node too (its tests do).
// NOTE: the OpenAI API streams text, not token ids, so chunks carry no tokenIds (StreamedChunk): the
// final chunk's usage is the token count.
import type { EngineClient, EngineErrorCode, EngineFinishReason, EngineHealth, EngineStats, GenerateRequest, ModelCard, StreamedChunk } from "../../../src/web.js";
import { EngineError, sseData } from "../../../src/web.js";
import { statsFromMetrics } from "./server_stats.js";

interface OpenAIChunk {
  choices?: { text?: string; delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: { message?: string; code?: string | null };
}

interface OpenAIErrorBody {
  error?: { message?: string; param?: string | null; code?: string | null };
}

const BY_STATUS: Record<number, EngineErrorCode> = { 400: "invalid_request", 404: "model_not_found", 429: "queue_full", 503: "unavailable" };
/** The OpenAI error codes kiln's server sends that name an EngineErrorCode more precisely than the status does. */
const BY_CODE: Record<string, EngineErrorCode> = { context_length_exceeded: "context_length_exceeded", queue_timeout: "queue_timeout", queue_full: "queue_full", model_not_found: "model_not_found" };

const finishOf = (r: string): EngineFinishReason => (r === "length" ? "length" : r === "abort" ? "abort" : "stop");

export class HttpEngineClient implements EngineClient<StreamedChunk> {
  /** The requests being streamed, by reqId, with the controller that closes each one's connection. */
  private readonly inflight = new Map<string, AbortController>();

  /** `baseUrl` ends in /v1 (e.g. http://127.0.0.1:8080/v1). */
  constructor(readonly baseUrl: string, private readonly apiKey?: string) {}

  private headers(): Record<string, string> {
    return { "Content-Type": "application/json", ...(this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {}) };
  }

  /** The server's root (where /health and /metrics are). */
  private get root(): string {
    return this.baseUrl.replace(/\/v1\/?$/, "");
  }

  /** fetch, with a network failure (no server, refused, CORS) as an EngineError that names the URL. */
  private async send(url: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new EngineError({ code: "unavailable", message: `cannot reach ${url}: ${(err as Error).message}` });
    }
  }

  private async fail(res: Response): Promise<never> {
    let body: OpenAIErrorBody = {};
    try {
      body = (await res.json()) as OpenAIErrorBody;
    } catch {
      // NOTE: not an OpenAI error body: the status line says enough.
    }
    const retry = Number(res.headers.get("retry-after") ?? NaN);
    throw new EngineError({
      code: BY_CODE[body.error?.code ?? ""] ?? BY_STATUS[res.status] ?? "internal",
      message: body.error?.message ?? `HTTP ${res.status} from ${res.url}`,
      ...(body.error?.param ? { param: body.error.param } : {}),
      ...(Number.isFinite(retry) ? { retryAfterS: retry } : {}),
    });
  }

  private body(req: GenerateRequest): Record<string, unknown> {
    const s = req.sampling;
    const p = req.prompt;
    const some = (key: string, v: unknown) => (v === undefined ? {} : { [key]: v });
    return {
      model: req.model,
      ...(p.kind === "chat" ? { messages: p.messages } : { prompt: p.kind === "text" ? p.text : p.tokenIds }),
      stream: true,
      stream_options: { include_usage: true },
      ...some("max_tokens", req.maxTokens), ...some("temperature", s.temperature), ...some("top_p", s.topP), ...some("top_k", s.topK),
      ...some("min_p", s.minP), ...some("seed", s.seed), ...some("presence_penalty", s.presencePenalty),
      ...some("frequency_penalty", s.frequencyPenalty), ...some("repetition_penalty", s.repetitionPenalty),
      ...(req.stop?.length ? { stop: req.stop } : {}), ...(req.ignoreEos ? { ignore_eos: true } : {}), ...some("user", req.user),
    };
  }

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<StreamedChunk> {
    if (req.logprobs) {
      throw new EngineError({ code: "invalid_request", message: "logprobs: not offered over HTTP (the OpenAI API names tokens by text, and a ChunkLogprob needs the id)", param: "logprobs" });
    }
    if (this.inflight.has(req.reqId)) throw new EngineError({ code: "invalid_request", message: `reqId '${req.reqId}' is already in flight`, param: "reqId" });
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) ctl.abort();
    this.inflight.set(req.reqId, ctl);
    const aborted: StreamedChunk = { textDelta: "", finishReason: "abort" };
    try {
      const path = `${this.baseUrl}/${req.prompt.kind === "chat" ? "chat/completions" : "completions"}`;
      let res: Response;
      try {
        res = await this.send(path, { method: "POST", headers: this.headers(), body: JSON.stringify(this.body(req)), signal: ctl.signal });
      } catch (err) {
        if (!ctl.signal.aborted) throw err;
        yield aborted;
        return;
      }
      if (!res.ok || !res.body) await this.fail(res);
      let finish: EngineFinishReason | undefined;
      try {
        for await (const data of sseData(res.body!)) {
          if (data === "[DONE]") break;
          const c = JSON.parse(data) as OpenAIChunk;
          if (c.error) throw new EngineError({ code: BY_CODE[c.error.code ?? ""] ?? "internal", message: c.error.message ?? `the server sent an error: ${data}` });
          const choice = c.choices?.[0];
          const text = choice?.text ?? choice?.delta?.content ?? "";
          if (text) yield { textDelta: text };
          if (choice?.finish_reason) finish = finishOf(choice.finish_reason);
          if (c.usage && finish) {
            yield { textDelta: "", finishReason: finish, usage: { promptTokens: c.usage.prompt_tokens, completionTokens: c.usage.completion_tokens } };
            return;
          }
        }
      } catch (err) {
        if (!ctl.signal.aborted) throw err;
        yield aborted;
        return;
      }
      if (ctl.signal.aborted) yield aborted;
      // NOTE: a server that ignores stream_options sends no usage: the last chunk has the finish reason only.
      else if (finish) yield { textDelta: "", finishReason: finish };
      else throw new EngineError({ code: "internal", message: `the stream from ${path} ended before the request finished` });
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.inflight.delete(req.reqId);
      // NOTE: a reader that stops early (break) closes the connection, and the server aborts the request;
      // after a finished stream this does nothing.
      ctl.abort();
    }
  }

  async models(): Promise<readonly ModelCard[]> {
    const res = await this.send(`${this.baseUrl}/models`, { headers: this.headers() });
    if (!res.ok) await this.fail(res);
    const body = (await res.json()) as { data: { id: string; created: number; owned_by: string; max_model_len?: number }[] };
    return body.data.map((m) => ({ id: m.id, created: m.created, ownedBy: m.owned_by, maxModelLen: m.max_model_len ?? 0 }));
  }

  async health(): Promise<EngineHealth> {
    try {
      const res = await fetch(`${this.root}/health`);
      return res.ok ? { status: "ready" } : { status: "loading", message: `HTTP ${res.status}` };
    } catch (err) {
      return { status: "failed", message: (err as Error).message };
    }
  }

  /** Closes the request's connection: kiln serve (and vLLM) abort a request whose client went away. */
  async abort(reqId: string): Promise<void> {
    this.inflight.get(reqId)?.abort();
  }

  /** The server's gauges from its /metrics; an EngineError (unavailable) when it publishes none. */
  async stats(): Promise<EngineStats> {
    const url = `${this.root}/metrics`;
    const res = await this.send(url);
    if (!res.ok) throw new EngineError({ code: "unavailable", message: `${url} answered HTTP ${res.status}: the server offers no stats` });
    const stats = statsFromMetrics(await res.text());
    if (!stats) throw new EngineError({ code: "unavailable", message: `${url} has no request gauges (kiln_num_requests_running, vllm:num_requests_running): the server offers no stats` });
    return stats;
  }
}
