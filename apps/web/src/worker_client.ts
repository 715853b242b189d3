// worker_client.ts: EngineClient for the page, over the engine Worker (comlink). Chunks arrive through
// a callback and are queued, so the page reads a request's output exactly as it reads a server's.
import * as Comlink from "comlink";
import type { EngineClient, EngineHealth, EngineStats, GenerateChunk, GenerateRequest, ModelCard } from "../../../src/web.js";
import { AsyncQueue, EngineError } from "../../../src/web.js";
import type { EngineWorkerApi } from "./protocol.js";

export class WorkerEngineClient implements EngineClient {
  constructor(readonly api: Comlink.Remote<EngineWorkerApi>) {}

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateChunk> {
    const queue = new AsyncQueue<GenerateChunk>();
    let ended = false;
    const onAbort = () => void this.api.abort(req.reqId);
    signal?.addEventListener("abort", onAbort, { once: true });
    void this.api.generate(req, Comlink.proxy((c: GenerateChunk) => queue.push(c))).then(
      (r) => (r.ok ? queue.close() : queue.fail(new EngineError(r.error))),
      (err: unknown) => queue.fail(new EngineError({ code: "internal", message: `the engine worker failed: ${(err as Error).message}` })),
    );
    try {
      for await (const chunk of queue) {
        if (chunk.finishReason) ended = true;
        yield chunk;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // NOTE: a reader that stops early (break) aborts the request, as the EngineClient contract says.
      if (!ended) void this.api.abort(req.reqId);
    }
  }

  models(): Promise<readonly ModelCard[]> {
    return this.api.models();
  }
  health(): Promise<EngineHealth> {
    return this.api.health();
  }
  abort(reqId: string): Promise<void> {
    return this.api.abort(reqId);
  }
  stats(): Promise<EngineStats> {
    return this.api.stats();
  }
}
