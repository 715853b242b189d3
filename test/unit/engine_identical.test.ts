// The continuous-batching engine on stories260K (cpu): greedy outputs are identical whether a request
// runs alone, among 32 concurrent requests of different prompts and lengths, after being preempted
// (a KV pool too small for everyone), or with a prefix-cache hit; the greedy continuation of
// "Once upon a time" is llama2.c's; and after every scenario the block pool is full again.

import { describe, expect, it } from "vitest";
import type { Engine } from "../../src/serve/engine.js";
import { GREEDY_60, PROMPTS, makeEngine, poolState, run } from "./engine_helpers.js";

const MAX = 12;

async function expectPoolFull(engine: Engine): Promise<void> {
  const { free, total } = await poolState(engine);
  expect(free).toBe(total);
}

/** Each prompt alone, one after another, on a fresh engine: the reference for every other scenario. */
async function soloRuns(prompts: readonly string[], maxTokens: number, sampling = { temperature: 0 }): Promise<number[][]> {
  const engine = await makeEngine();
  const out: number[][] = [];
  for (const p of prompts) out.push((await run(engine, p, { maxTokens, sampling, ignoreEos: true })).tokenIds);
  await expectPoolFull(engine);
  await engine.close();
  return out;
}

describe("engine: identical greedy outputs", () => {
  it("gives llama2.c's greedy continuation of 'Once upon a time'", async () => {
    const engine = await makeEngine();
    const r = await run(engine, "Once upon a time", { maxTokens: 60 });
    expect(r.text).toBe(GREEDY_60);
    expect(r.finishReason).toBe("length");
    expect(r.usage).toEqual({ promptTokens: 5, completionTokens: 60 });
    await expectPoolFull(engine);
    await engine.close();
  });

  it("is the same alone and in a batch of 32 concurrent requests", async () => {
    const solo = await soloRuns(PROMPTS, MAX);
    // Warmed up: every step shape (tokens x sequences) was captured on padding before any request,
    // then replayed on real ones: the batch captures nothing new.
    const engine = await makeEngine({ warmup: true, maxNumSeqs: 32 });
    const runner = engine.core("stories260K")!.runner;
    const warmed = [...runner.capturedBuckets];
    expect(warmed).toEqual(expect.arrayContaining(["1x1", "2x2", "4x4", "8x8", "16x16", "32x32", "64x32", "192x32"]));
    const steps = runner.numSteps;
    const results = await Promise.all(PROMPTS.map((p) => run(engine, p, { maxTokens: MAX, ignoreEos: true })));
    expect(results.map((r) => r.tokenIds)).toEqual(solo);
    expect(runner.capturedBuckets).toEqual(warmed);
    // They really ran together: 32 prompts and 12 tokens each took a handful of steps, not 32 x 12.
    expect(runner.numSteps - steps).toBeLessThanOrEqual(MAX + 2);
    await expectPoolFull(engine);
    await engine.close();
  });

  it("is the same after a preemption (a KV pool too small for everyone)", async () => {
    const prompts = PROMPTS.slice(0, 8);
    const solo = await soloRuns(prompts, 40);
    // 32 blocks of 4 tokens hold one request of the (shortened) 128-token context, far from 8 x ~55 tokens.
    const engine = await makeEngine({ blockSize: 4, numBlocks: 32, maxModelLen: 128 });
    const results = await Promise.all(prompts.map((p) => run(engine, p, { maxTokens: 40, ignoreEos: true })));
    expect(results.map((r) => r.tokenIds)).toEqual(solo);
    expect(engine.core("stories260K")!.stats().totalPreemptions).toBeGreaterThan(0);
    await expectPoolFull(engine);
    await engine.close();
  });

  it("is the same with a seed and temperature 1 after a preemption (the sampler resumes its stream)", async () => {
    const prompts = PROMPTS.slice(0, 6);
    const sampling = { temperature: 1, seed: 1234 };
    const solo = await soloRuns(prompts, 40, sampling);
    const engine = await makeEngine({ blockSize: 4, numBlocks: 32, maxModelLen: 128 });
    const results = await Promise.all(prompts.map((p) => run(engine, p, { maxTokens: 40, ignoreEos: true, sampling })));
    expect(results.map((r) => r.tokenIds)).toEqual(solo);
    expect(engine.core("stories260K")!.stats().totalPreemptions).toBeGreaterThan(0);
    await expectPoolFull(engine);
    await engine.close();
  });

  it("is the same with a prefix-cache hit (two requests sharing a long prompt prefix)", async () => {
    const shared = "Once upon a time there was a kind bear who lived in a big forest with his friends. Every day the bear";
    const [a, b] = [`${shared} went to the river`, `${shared} ate some honey`];
    const [soloB] = await soloRuns([b], MAX);
    const engine = await makeEngine({ blockSize: 4 });
    await run(engine, a, { maxTokens: MAX });
    const before = engine.core("stories260K")!.stats();
    const rb = await run(engine, b, { maxTokens: MAX, ignoreEos: true });
    const after = engine.core("stories260K")!.stats();
    expect(after.prefixCacheHitTokens - before.prefixCacheHitTokens).toBeGreaterThanOrEqual(20);
    expect(rb.tokenIds).toEqual(soloB);
    await expectPoolFull(engine);
    await engine.close();
  });
});
