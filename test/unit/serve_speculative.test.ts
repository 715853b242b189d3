// Speculative decoding in the engine on stories260K (cpu), prompt-lookup (n-gram) drafting: greedy
// output is token for token the non-speculative output, alone and in a batch of concurrent requests,
// drafts are really proposed and accepted (stories260K repeats itself a lot), a request can opt out,
// and after every scenario the KV block pool is full again (rejected draft slots leak no block).

import { describe, expect, it } from "vitest";
import type { Engine, EngineOptions } from "../../src/serve/engine.js";
import { NgramDrafter } from "../../src/serve/speculative/ngram_drafter.js";
import { PROMPTS, makeEngine, poolState, run } from "./engine_helpers.js";

const MAX = 48;
const ngram = (maxK = 4): EngineOptions => ({ speculative: { drafter: () => new NgramDrafter(), maxK } });

async function expectPoolFull(engine: Engine): Promise<void> {
  const { free, total } = await poolState(engine);
  expect(free).toBe(total);
}

async function outputs(engine: Engine, prompts: readonly string[], concurrent: boolean, extra: { speculative?: boolean } = {}): Promise<number[][]> {
  const one = (p: string) => run(engine, p, { maxTokens: MAX, ignoreEos: true, ...extra }).then((r) => r.tokenIds);
  if (concurrent) return Promise.all(prompts.map(one));
  const out: number[][] = [];
  for (const p of prompts) out.push(await one(p));
  return out;
}

describe("speculative decoding: n-gram drafting, greedy", () => {
  const prompts = PROMPTS.slice(0, 8);

  it("gives the non-speculative tokens, alone and in a concurrent batch, and accepts drafts", async () => {
    const plain = await makeEngine();
    const reference = await outputs(plain, prompts, false);
    await plain.close();

    const engine = await makeEngine(ngram());
    expect(await outputs(engine, prompts, false)).toEqual(reference);
    expect(await outputs(engine, prompts, true)).toEqual(reference);
    const stats = engine.core("stories260K")!.runner.specStats()!;
    expect(stats.numDraftTokens).toBeGreaterThan(0);
    expect(stats.numAcceptedTokens).toBeGreaterThan(0);
    expect(stats.numAcceptedTokens).toBeLessThanOrEqual(stats.numDraftTokens);
    expect(stats.numEmittedTokens).toBe(stats.numAcceptedTokens + stats.numVerifies);
    await expectPoolFull(engine);
    await engine.close();
  }, 60_000);
});
