// Speculative decoding in the engine on stories260K (cpu), prompt-lookup (n-gram) drafting: greedy
// output is token for token the non-speculative output, alone and in a batch of concurrent requests,
// drafts are really proposed and accepted (stories260K repeats itself a lot), a request can opt out,
// and after every scenario the KV block pool is full again (rejected draft slots leak no block).

import { describe, expect, it } from "vitest";
import type { Engine, EngineOptions } from "../../src/serve/engine.js";
import { ServerMetrics } from "../../src/serve/openai/server_metrics.js";
import { NgramDrafter } from "../../src/serve/speculative/ngram_drafter.js";
import { MODEL, PROMPTS, makeEngine, poolState, run } from "./engine_helpers.js";

const MAX = 40;
const ngram = (maxK = 4): EngineOptions => ({ speculative: { drafter: () => new NgramDrafter(), maxK } });

async function expectPoolFull(engine: Engine): Promise<void> {
  const { free, total } = await poolState(engine);
  expect(free).toBe(total);
}

async function optedOut(engine: Engine, prompt: string): Promise<number[]> {
  const ids: number[] = [];
  const gen = engine.generate({ reqId: `out-${prompt}`, model: MODEL, prompt: { kind: "text", text: prompt }, sampling: { temperature: 0 }, maxTokens: MAX, ignoreEos: true, speculative: false });
  for await (const c of gen) ids.push(...c.tokenIds);
  return ids;
}

async function outputs(engine: Engine, prompts: readonly string[], concurrent: boolean): Promise<number[][]> {
  const one = (p: string) => run(engine, p, { maxTokens: MAX, ignoreEos: true }).then((r) => r.tokenIds);
  if (concurrent) return Promise.all(prompts.map(one));
  const out: number[][] = [];
  for (const p of prompts) out.push(await one(p));
  return out;
}

const prompts = PROMPTS.slice(0, 8);
let referenceOutputs: Promise<number[][]> | undefined;
/** The non-speculative greedy outputs of `prompts`, one after another (computed once). */
function reference(): Promise<number[][]> {
  return (referenceOutputs ??= (async () => {
    const plain = await makeEngine();
    const out = await outputs(plain, prompts, false);
    await plain.close();
    return out;
  })());
}

describe("speculative decoding: n-gram drafting, greedy", () => {

  it("gives the non-speculative tokens, alone and in a concurrent batch, and accepts drafts", async () => {
    const ref = await reference();
    const engine = await makeEngine(ngram());
    expect(await outputs(engine, prompts, false)).toEqual(ref);
    expect(await outputs(engine, prompts, true)).toEqual(ref);
    const stats = engine.core("stories260K")!.runner.specStats()!;
    expect(stats.numDraftTokens).toBeGreaterThan(0);
    expect(stats.numAcceptedTokens).toBeGreaterThan(0);
    expect(stats.numAcceptedTokens).toBeLessThanOrEqual(stats.numDraftTokens);
    expect(stats.numEmittedTokens).toBe(stats.numAcceptedTokens + stats.numVerifies);
    // The engine's stats carry the counters to /metrics.
    const metrics = new ServerMetrics().render(await engine.stats());
    expect(metrics).toContain(`kiln_spec_decode_num_draft_tokens_total ${stats.numDraftTokens}\n`);
    expect(metrics).toContain(`kiln_spec_decode_num_accepted_tokens_total ${stats.numAcceptedTokens}\n`);
    expect(metrics).toMatch(new RegExp(`kiln_spec_decode_acceptance_rate ${(stats.numAcceptedTokens / stats.numDraftTokens).toFixed(3)}`));
    expect(metrics).toMatch(/kiln_spec_decode_mean_acceptance_length [12]\./);
    await expectPoolFull(engine);
    await engine.close();
  }, 60_000);
});

describe("speculative decoding: opt-out and memory pressure", () => {
  it("drafts nothing for a request with speculative: false, which gives the same tokens", async () => {
    const ref = await reference();
    const engine = await makeEngine(ngram());
    expect(await optedOut(engine, prompts[0]!)).toEqual(ref[0]);
    expect(engine.core(MODEL)!.runner.specStats()!.numDraftTokens).toBe(0);
    await expectPoolFull(engine);
    await engine.close();
  }, 60_000);

  it("drops drafts when the KV pool cannot hold them, preempts as before, and gives the same tokens", async () => {
    const ref = await reference();
    // 32 blocks of 4 tokens: eight requests of ~60 tokens do not fit (preemptions), let alone their drafts.
    const engine = await makeEngine({ ...ngram(8), blockSize: 4, numBlocks: 32, maxModelLen: 128 });
    expect(await outputs(engine, prompts, true)).toEqual(ref);
    const core = engine.core(MODEL)!;
    expect(core.stats().totalPreemptions).toBeGreaterThan(0);
    expect(core.stats().numSpecSkippedForMemory).toBeGreaterThan(0);
    expect(core.runner.specStats()!.numAcceptedTokens).toBeGreaterThan(0);
    await expectPoolFull(engine);
    await engine.close();
  }, 60_000);
});

