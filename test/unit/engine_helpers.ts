// engine_helpers.ts: what the engine_*.test.ts files share: the bundled stories260K as a ServedModel on
// the cpu backend, an Engine over it, a helper that runs one request to the end and collects its
// chunks, and the check that a model's KV block pool is full again.

import { getBackend } from "../../src/index.js";
import { builtinModel, loadModel } from "../../src/models/formats/index.js";
import { fromLoaded } from "../../src/models/language_model.js";
import type { SamplingParams } from "../../src/models/sampling/index.js";
import { loadLlama2cTokenizer } from "../../src/models/tokenizers/index.js";
import type { Engine, EngineOptions } from "../../src/serve/engine.js";
import { Engine as EngineClass } from "../../src/serve/engine.js";
import type { ChunkLogprob, EngineFinishReason, GenerateChunk, Usage } from "../../src/serve/engine_client.js";
import type { ServedModel } from "../../src/serve/served_model.js";

export const MODEL = "stories260K";
/** llama2.c's greedy continuation of "Once upon a time" (60 tokens after BOS + 4 prompt tokens). */
export const GREEDY_60 =
  ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";

const loaded = loadModel(MODEL);
export const tokenizer = loadLlama2cTokenizer(builtinModel(MODEL)!.tokenizer, loaded.config.vocabSize);

export async function stories260K(): Promise<ServedModel> {
  const model = fromLoaded(loaded, await getBackend("cpu"));
  return { id: MODEL, model, tokenizer, stopTokenIds: tokenizer.eosId === undefined ? [] : [tokenizer.eosId] };
}

export async function makeEngine(opts: EngineOptions = {}): Promise<Engine> {
  const engine = new EngineClass([await stories260K()], opts);
  await engine.ready();
  return engine;
}

export interface Result {
  readonly text: string;
  readonly tokenIds: number[];
  readonly finishReason: EngineFinishReason | undefined;
  readonly usage: Usage | undefined;
  readonly logprobs: ChunkLogprob[];
  readonly chunks: GenerateChunk[];
}

export interface RunOptions {
  readonly maxTokens?: number;
  readonly sampling?: SamplingParams;
  readonly stop?: readonly string[];
  readonly logprobs?: boolean;
  readonly ignoreEos?: boolean;
  readonly signal?: AbortSignal;
  readonly tier?: string;
}

let nextId = 0;

/** Run one text (or token-id) prompt to its end. */
export async function run(engine: Engine, prompt: string | number[], opts: RunOptions = {}): Promise<Result> {
  const chunks: GenerateChunk[] = [];
  const gen = engine.generate({
    reqId: `t${nextId++}`, model: MODEL,
    prompt: typeof prompt === "string" ? { kind: "text", text: prompt } : { kind: "tokens", tokenIds: prompt },
    sampling: opts.sampling ?? { temperature: 0 },
    ...(opts.maxTokens === undefined ? {} : { maxTokens: opts.maxTokens }),
    ...(opts.stop ? { stop: opts.stop } : {}),
    ...(opts.logprobs ? { logprobs: true } : {}),
    ...(opts.ignoreEos ? { ignoreEos: true } : {}),
    ...(opts.tier ? { tier: opts.tier } : {}),
  }, opts.signal);
  for await (const c of gen) chunks.push(c);
  const last = chunks[chunks.length - 1];
  return {
    text: chunks.map((c) => c.textDelta).join(""),
    tokenIds: chunks.flatMap((c) => c.tokenIds),
    finishReason: last?.finishReason,
    usage: last?.usage,
    logprobs: chunks.flatMap((c) => c.logprobs ?? []),
    chunks,
  };
}

/** Free blocks and total blocks of the model's pool, once its engine loop is idle. */
export async function poolState(engine: Engine): Promise<{ free: number; total: number }> {
  const core = engine.core(MODEL)!;
  await core.idle();
  const s = core.stats();
  return { free: s.numFreeBlocks, total: s.numBlocks };
}

/** Prompts of different lengths and contents (short to a few dozen tokens). */
export const PROMPTS = [
  "Once upon a time", "The cat", "Tom had a big red ball and he liked to throw it high in the sky", "One day", "Lily went to the park with her mom",
  "There was a little dog named Max", "Sue", "The sun was hot and the children wanted to swim in the lake near their house",
  "A bird", "Ben and Mia", "The old man had a garden full of flowers", "Once there was a boy who loved trains",
  "It was raining", "The princess", "Anna found a shiny stone under a tree and she put it in her pocket", "Mom said",
  "The big truck", "Bob the frog jumped", "In a small town there lived a girl called Amy who was very shy", "The toy",
  "Sam was sad", "A little fish swam", "The teacher asked the class to draw a picture of their favorite animal", "Dad",
  "The moon", "Kitty wanted milk", "Once upon a time there was a kind bear who lived in a big forest with his friends", "The boat",
  "Grandma baked a cake", "Jack", "The children played", "A red car drove fast down the hill and",
];
