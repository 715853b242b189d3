// Speculative decoding's rejection sampling keeps the target's distribution exactly: over many seeded
// runs with a fixed small vocabulary, a context-free "model" (fixed logits per position) and a draft
// distribution that differs from the target's, the first two emitted tokens are distributed as
// non-speculative sampling draws them (chi-square on the joint of 36 cells). The same check run on a
// deliberately wrong rule (accept with probability min(1, p/q) but, on rejection, resample from p
// instead of the residual max(0, p - q)) must fail it: that is the test's power, shown in the test.

import { describe, expect, it } from "vitest";
import { createSampler, seedKey, uniformAt } from "../../src/models/sampling/index.js";
import type { SampleResult } from "../../src/models/sampling/index.js";
import { drawFrom, verify } from "../../src/serve/speculative/verifier.js";

const V = 6;
const TEMPERATURE = 0.8;
/** Target logits at output positions 0, 1, 2, ... (context-free: they do not depend on earlier tokens). */
const TARGET = [
  [2.0, 1.0, 0.5, 0.0, -1.0, 0.3],
  [0.1, 1.5, -0.5, 1.2, 0.0, 0.4],
  [1.0, 0.0, 0.0, 0.5, 2.0, -2.0],
  [0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
];
/** The drafter's distribution per position: close to the target's but not equal (acceptance in between). */
const DRAFT = [
  [0.1, 0.4, 0.2, 0.1, 0.1, 0.1],
  [0.3, 0.2, 0.1, 0.2, 0.1, 0.1],
  [0.2, 0.1, 0.1, 0.1, 0.4, 0.1],
].map((q) => Float64Array.from(q));
const RUNS = 20_000;
/** chi-square with 35 degrees of freedom exceeds this with probability 0.001. */
const CHI2_35_P001 = 66.62;

/** The wrong rule: resamples from p on rejection (so p(d) is counted twice). */
function wrongVerify(input: Parameters<typeof verify>[0]): ReturnType<typeof verify> {
  const { sampler, logits, draft, draftProbs } = input;
  const samples: SampleResult[] = [];
  const key = seedKey(sampler.params.seed);
  for (let i = 0; i <= draft.length; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    const p = sampler.distribution(row);
    const j = input.outputTokens.length + i;
    if (i < draft.length) {
      const d = draft[i]!;
      if (uniformAt((key ^ 0x6a09e667) >>> 0, j) * draftProbs![i]![d]! < p[d]!) {
        samples.push({ id: d, logprob: 0 });
        continue;
      }
    }
    samples.push({ id: drawFrom(p, uniformAt(key, j)), logprob: 0 });
    return { samples, numAccepted: i };
  }
  throw new Error("unreachable");
}

/** The first two tokens of one speculative run: draft k = 2 from DRAFT, verify, repeat until two are out. */
function twoTokens(seed: number, verifier: typeof verify): [number, number] {
  const sampler = createSampler({ temperature: TEMPERATURE, seed });
  const draftKey = (seedKey(seed) ^ 0x1234567) >>> 0;
  const out: number[] = [];
  while (out.length < 2) {
    const pos = out.length;
    const draft = [0, 1].map((i) => drawFrom(DRAFT[pos + i]!, uniformAt(draftKey, pos * 8 + i)));
    const logits = Float32Array.from([0, 1, 2].flatMap((i) => TARGET[pos + i]!));
    const v = verifier({ sampler, logits, vocabSize: V, draft, draftProbs: DRAFT.slice(pos), outputTokens: out.slice() });
    for (const s of v.samples) out.push(s.id);
  }
  return [out[0]!, out[1]!];
}

/** Pearson's chi-square of the observed pair counts against the target's product distribution. */
function chiSquare(verifier: typeof verify): number {
  const probs = [0, 1].map((pos) => createSampler({ temperature: TEMPERATURE, seed: 0 }).distribution(Float32Array.from(TARGET[pos]!)));
  const counts = new Float64Array(V * V);
  for (let s = 0; s < RUNS; s++) {
    const [a, b] = twoTokens(s, verifier);
    counts[a * V + b]!++;
  }
  let chi2 = 0;
  for (let a = 0; a < V; a++) {
    for (let b = 0; b < V; b++) {
      const expected = RUNS * probs[0]![a]! * probs[1]![b]!;
      chi2 += (counts[a * V + b]! - expected) ** 2 / expected;
    }
  }
  return chi2;
}

describe("speculative decoding: rejection sampling keeps the target distribution", () => {
  it("passes a chi-square test on the first two tokens; a wrong rule fails it", () => {
    const exact = chiSquare(verify);
    const wrong = chiSquare(wrongVerify);
    expect(exact).toBeLessThan(CHI2_35_P001);
    expect(wrong).toBeGreaterThan(CHI2_35_P001);
  }, 30_000);

  it("with deterministic drafts (n-gram: q a point mass) the first token is distributed as p", () => {
    const p = createSampler({ temperature: TEMPERATURE, seed: 0 }).distribution(Float32Array.from(TARGET[0]!));
    const counts = new Float64Array(V);
    for (let s = 0; s < RUNS; s++) {
      const sampler = createSampler({ temperature: TEMPERATURE, seed: s });
      const logits = Float32Array.from([0, 1].flatMap((i) => TARGET[i]!));
      counts[verify({ sampler, logits, vocabSize: V, draft: [1], draftProbs: null, outputTokens: [] }).samples[0]!.id]!++;
    }
    let chi2 = 0;
    for (let t = 0; t < V; t++) chi2 += (counts[t]! - RUNS * p[t]!) ** 2 / (RUNS * p[t]!);
    expect(chi2).toBeLessThan(20.52); // chi-square, 5 degrees of freedom, p = 0.001
  });

  it("greedy keeps the draft while it is the argmax, then takes the argmax", () => {
    const sampler = createSampler({ temperature: 0 });
    const logits = Float32Array.from([0, 1, 2].flatMap((i) => TARGET[i]!)); // argmaxes 0, 1, 4
    expect(verify({ sampler, logits, vocabSize: V, draft: [0, 3], draftProbs: null, outputTokens: [] }).samples.map((s) => s.id)).toEqual([0, 1]);
    expect(verify({ sampler, logits, vocabSize: V, draft: [0, 1], draftProbs: null, outputTokens: [] }).samples.map((s) => s.id)).toEqual([0, 1, 4]);
    expect(verify({ sampler, logits, vocabSize: V, draft: [2, 1], draftProbs: null, outputTokens: [] }).samples.map((s) => s.id)).toEqual([0]);
  });
});
