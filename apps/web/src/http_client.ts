// http_client.ts: EngineClient over an OpenAI-compatible server (`kiln serve`, or any other), so the
// page sends a prompt to a server exactly as it sends one to its in-browser engine. Streams over SSE
// (/v1/completions or /v1/chat/completions) and maps OpenAI's errors back to EngineError codes.
import type { EngineClient, EngineErrorCode, EngineHealth, EngineStats, GenerateChunk, GenerateRequest, ModelCard } from "../../../src/web.js";
import { EngineError } from "../../../src/web.js";

interface OpenAIChunk {
  choices?: { text?: string; delta?: { content?: string }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}

const CODES: Record<number, EngineErrorCode> = { 400: "invalid_request", 404: "model_not_found", 429: "queue_full", 503: "unavailable" };

export class HttpEngineClient implements EngineClient {
  /** `baseUrl` ends in /v1 (e.g. http://127.0.0.1:8080/v1). */
  constructor(readonly baseUrl: string, private readonly apiKey?: string) {}

  private headers(): Record<string, string> {
    return { "Content-Type": "application/json", ...(this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {}) };
  }

  /** fetch, with a network failure (no server, refused, CORS) as an EngineError that names the URL. */
  private async send(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.baseUrl}${path}`, init);
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new EngineError({ code: "unavailable", message: `cannot reach ${this.baseUrl}: ${(err as Error).message}` });
    }
  }

  private async fail(res: Response): Promise<never> {
    let message = `HTTP ${res.status} from ${res.url}`;
    try {
      const body = (await res.json()) as { error?: { message?: string; param?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // NOTE: not an OpenAI error body: the status line says enough.
    }
    throw new EngineError({ code: CODES[res.status] ?? "internal", message });
  }

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateChunk> {
    const chat = req.prompt.kind === "chat";
    const body = {
      model: req.model,
      ...(req.prompt.kind === "chat" ? { messages: req.prompt.messages } : { prompt: req.prompt.kind === "text" ? req.prompt.text : req.prompt.tokenIds }),
      stream: true,
      stream_options: { include_usage: true },
      ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
      ...(req.sampling.temperature !== undefined ? { temperature: req.sampling.temperature } : {}),
      ...(req.sampling.topP !== undefined ? { top_p: req.sampling.topP } : {}),
      ...(req.sampling.seed !== undefined ? { seed: req.sampling.seed } : {}),
      ...(req.stop?.length ? { stop: req.stop } : {}),
    };
    const res = await this.send(`/${chat ? "chat/completions" : "completions"}`, { method: "POST", headers: this.headers(), body: JSON.stringify(body), ...(signal ? { signal } : {}) });
    if (!res.ok || !res.body) await this.fail(res);
    const decoder = new TextDecoder();
    let buffered = "";
    let finish: GenerateChunk["finishReason"];
    const reader = res.body!.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
          if (!data || data === "[DONE]") continue;
          const c = JSON.parse(data) as OpenAIChunk;
          const choice = c.choices?.[0];
          const text = choice?.text ?? choice?.delta?.content ?? "";
          if (choice?.finish_reason) finish = choice.finish_reason === "length" ? "length" : "stop";
          if (c.usage) {
            yield { textDelta: text, tokenIds: [], finishReason: finish ?? "stop", usage: { promptTokens: c.usage.prompt_tokens, completionTokens: c.usage.completion_tokens } };
          } else if (text || choice) {
            // NOTE: the server sends one chunk per step; token ids are not on the wire, so count one per chunk.
            yield { textDelta: text, tokenIds: text ? [-1] : [] };
          }
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  async models(): Promise<readonly ModelCard[]> {
    const res = await this.send("/models", { headers: this.headers() });
    if (!res.ok) await this.fail(res);
    const body = (await res.json()) as { data: { id: string; created: number; owned_by: string; max_model_len?: number }[] };
    return body.data.map((m) => ({ id: m.id, created: m.created, ownedBy: m.owned_by, maxModelLen: m.max_model_len ?? 0 }));
  }

  async health(): Promise<EngineHealth> {
    try {
      const res = await fetch(`${this.baseUrl.replace(/\/v1$/, "")}/health`);
      return res.ok ? { status: "ready" } : { status: "loading", message: `HTTP ${res.status}` };
    } catch (err) {
      return { status: "failed", message: (err as Error).message };
    }
  }

  async abort(): Promise<void> {
    // NOTE: over HTTP a request is aborted by its signal (closing the stream); the server frees it at once.
  }

  async stats(): Promise<EngineStats> {
    return { running: 0, waiting: 0 };
  }
}
