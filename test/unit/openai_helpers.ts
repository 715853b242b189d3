// openai_helpers.ts: what the openai_*.test.ts files share: the bundled stories260K served by the real
// continuous-batching Engine on the cpu backend, an OpenAIServer on 127.0.0.1 with an ephemeral port, and a
// recording EngineClient wrapper (delegating to the real engine) that lets a test see what reached
// the engine: each request's last chunk, its generated token ids and whether its AbortSignal fired.

import { getBackend } from "../../src/index.js";
import { builtinModel, loadModel } from "../../src/models/formats/index.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { loadLlama2cTokenizer } from "../../src/models/tokenizers/index.js";
import type { EngineClient, GenerateChunk, GenerateRequest } from "../../src/serve/engine_client.js";
import type { OpenAIServerOptions } from "../../src/serve/openai/server.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import type { ServedModel } from "../../src/serve/served_model.js";
import type { EngineOptions } from "../../src/serve/engine.js";
import { Engine } from "../../src/serve/engine.js";

export const MODEL = "stories260K";
/** llama2.c's greedy continuation of "Once upon a time" (60 tokens after BOS + 4 prompt tokens). */
export const GREEDY_60 =
  ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";

export async function stories260K(): Promise<ServedModel> {
  const loaded = loadModel(MODEL);
  const tokenizer = loadLlama2cTokenizer(builtinModel(MODEL)!.tokenizer, loaded.config.vocabSize);
  const model = fromLoaded(loaded, await getBackend("cpu"));
  return { id: MODEL, model, tokenizer, stopTokenIds: tokenizer.eosId === undefined ? [] : [tokenizer.eosId] };
}

/** What reached the engine for one request. */
export interface Seen {
  readonly req: GenerateRequest;
  readonly signal: AbortSignal | undefined;
  last?: GenerateChunk;
  /** Every token id the engine generated for it, in order. */
  readonly tokenIds: number[];
}

/** Delegates to a real engine and records every request and its last chunk. */
export class RecordingEngine implements EngineClient {
  readonly seen: Seen[] = [];
  constructor(readonly inner: EngineClient) {}

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerateChunk> {
    const s: Seen = { req, signal, tokenIds: [] };
    this.seen.push(s);
    for await (const c of this.inner.generate(req, signal)) {
      s.last = c;
      s.tokenIds.push(...c.tokenIds);
      yield c;
    }
  }

  models() { return this.inner.models(); }
  health() { return this.inner.health(); }
  abort(reqId: string) { return this.inner.abort(reqId); }
  stats() { return this.inner.stats(); }
}

export interface Served {
  readonly server: OpenAIServer;
  readonly engine: Engine;
  readonly recorder: RecordingEngine;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serve `model` (default: a fresh stories260K) on 127.0.0.1, on a free port. The engine gets a small
 * KV cache (64 blocks of 16 tokens) unless told otherwise; maxNumSeqs 1 makes requests queue.
 */
export async function serve(opts: OpenAIServerOptions & EngineOptions = {}, model?: Promise<ServedModel>): Promise<Served> {
  const engine = new Engine((model ?? stories260K()).then((m) => [m]), { numBlocks: 64, ...opts });
  await engine.ready();
  const recorder = new RecordingEngine(engine);
  const server = new OpenAIServer(recorder, { log: () => {}, ...opts });
  const addr = await server.listen(0, "127.0.0.1");
  return {
    server, engine, recorder, url: `http://127.0.0.1:${addr.port}`,
    async close() {
      await server.close(2000);
      await engine.close();
    },
  };
}

/** Poll `cond` every 10 ms, at most `ms`; false when it never held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  for (let t = 0; t < ms; t += 10) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}
