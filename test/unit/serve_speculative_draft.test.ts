// Speculative decoding with a draft model (cpu): the real pair of models/spec-pair (a 0.9M-parameter
// target and a 0.17M-parameter draft trained on the same 1024-token BPE, PROVENANCE.md there) gives
// the target's own greedy tokens, alone and batched, with some but not all drafts accepted; stories260K
// drafting for itself accepts every draft; the draft's KV blocks all come back; a draft whose
// vocabulary differs is refused at load naming both sizes.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import type { CachedDecoder } from "../../src/models/language_model.js";
import { fromLoaded, openModel } from "../../src/models/index.js";
import { Llama } from "../../src/models/llama.js";
import type { EngineOptions } from "../../src/serve/engine.js";
import { Engine } from "../../src/serve/engine.js";
import { DraftModelDrafter } from "../../src/serve/speculative/draft_model_drafter.js";
import { MODEL, PROMPTS, makeEngine, poolState, run, stories260K } from "./engine_helpers.js";

const MAX = 32;
const prompts = PROMPTS.slice(0, 6);

async function pairEngine(opts: EngineOptions = {}): Promise<Engine> {
  const cpu = await getBackend("cpu");
  const t = openModel("models/spec-pair/target/model.gguf");
  const engine = new Engine([{ id: MODEL, model: fromLoaded(t.loaded, cpu), tokenizer: t.tokenizer, stopTokenIds: t.stopTokenIds }], opts);
  await engine.ready();
  return engine;
}

async function greedy(engine: Engine, concurrent: boolean): Promise<number[][]> {
  const one = (p: string) => run(engine, p, { maxTokens: MAX, ignoreEos: true }).then((r) => r.tokenIds);
  if (concurrent) return Promise.all(prompts.map(one));
  const out: number[][] = [];
  for (const p of prompts) out.push(await one(p));
  return out;
}

async function expectPoolFull(engine: Engine): Promise<void> {
  const { free, total } = await poolState(engine);
  expect(free).toBe(total);
}

describe("speculative decoding: a draft model", () => {
  it("gives the target's greedy tokens with the trained pair, drafts partly accepted, and frees every block", async () => {
    const plain = await pairEngine();
    const ref = await greedy(plain, false);
    await plain.close();
    const cpu = await getBackend("cpu");
    const draft = fromLoaded(openModel("models/spec-pair/draft/model.gguf").loaded, cpu).model;
    let drafter: DraftModelDrafter | undefined;
    const engine = await pairEngine({ speculative: { drafter: async (t) => (drafter = await DraftModelDrafter.create(draft, t, { numBlocks: 64 })), maxK: 4 } });
    const free = drafter!.numFreeBlocks;
    expect(await greedy(engine, false)).toEqual(ref);
    expect(await greedy(engine, true)).toEqual(ref);
    const s = engine.core(MODEL)!.runner.specStats()!;
    expect(s.numAcceptedTokens).toBeGreaterThan(0.2 * s.numDraftTokens);
    expect(s.numAcceptedTokens).toBeLessThan(s.numDraftTokens);
    await expectPoolFull(engine);
    expect(drafter!.numFreeBlocks).toBe(free);
    await engine.close();
  }, 60_000);

  it("gives the non-speculative tokens with stories260K drafting for itself (all accepted), and frees the draft's blocks", async () => {
    const plain = await makeEngine();
    const ref = await greedy(plain, false);
    await plain.close();
    const draft = (await stories260K()).model as CachedDecoder;
    let drafter: DraftModelDrafter | undefined;
    const engine = await makeEngine({
      speculative: { drafter: async (target) => (drafter = await DraftModelDrafter.create(draft.model, target, { numBlocks: 64 })), maxK: 4 },
    });
    const freeAtStart = drafter!.numFreeBlocks;
    expect(await greedy(engine, true)).toEqual(ref);
    const stats = engine.core(MODEL)!.runner.specStats()!;
    expect(stats.drafter).toBe("draft:model");
    // The same weights draft and verify: every greedy draft token is the target's argmax.
    expect(stats.numDraftTokens).toBeGreaterThan(prompts.length * 4);
    expect(stats.numAcceptedTokens).toBe(stats.numDraftTokens);
    await expectPoolFull(engine);
    expect(drafter!.numFreeBlocks).toBe(freeAtStart);
    await engine.close();
  }, 60_000);

  it("samples with a draft model: stories260K drafting for itself at temperature 0.8 has q = p, so every draft is accepted", async () => {
    const draft = (await stories260K()).model as CachedDecoder;
    const engine = await makeEngine({ speculative: { drafter: (target) => DraftModelDrafter.create(draft.model, target, { numBlocks: 64 }), maxK: 3 } });
    const sampling = { temperature: 0.8, topP: 0.9, seed: 7 };
    const results = await Promise.all(prompts.slice(0, 3).map((p) => run(engine, p, { maxTokens: 24, ignoreEos: true, sampling })));
    for (const r of results) expect(r.tokenIds).toHaveLength(24);
    const stats = engine.core(MODEL)!.runner.specStats()!;
    expect(stats.numDraftTokens).toBeGreaterThan(0);
    // NOTE: min(1, p/q) = 1 when the draft's distribution is the target's (same weights, same processing).
    expect(stats.numAcceptedTokens).toBe(stats.numDraftTokens);
    // A seeded request replays: the draws are a function of (seed, output index).
    const again = await run(engine, prompts[0]!, { maxTokens: 24, ignoreEos: true, sampling });
    expect(again.tokenIds).toEqual(results[0]!.tokenIds);
    await expectPoolFull(engine);
    await engine.close();
  }, 60_000);

  it("refuses a draft whose vocabulary differs, naming both sizes, and the engine fails to load", async () => {
    const cpu = await getBackend("cpu");
    // The pair's draft (1024-token BPE) for stories260K (512-token llama2.c vocabulary).
    const draft = fromLoaded(openModel("models/spec-pair/draft/model.gguf").loaded, cpu).model;
    const target = ((await stories260K()).model as CachedDecoder).model;
    await expect(DraftModelDrafter.create(draft, target)).rejects.toThrow(/draft model has a vocabulary of 1024 tokens, the target 512/);
    const tiny = new Llama({ arch: "llama", dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 2, headDim: 4, vocabSize: 19, maxSeqLen: 32, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true }, cpu);
    const engine = new Engine([await stories260K()], { speculative: { drafter: (t) => DraftModelDrafter.create(tiny, t) } });
    await expect(engine.ready()).rejects.toThrow(/vocabulary of 19 tokens, the target 512/);
    await engine.close();
  });
});
