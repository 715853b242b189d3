// sampling.test.ts: the host-side sampler: parameter validation (errors name the field), greedy,
// temperature, top-k / top-p / min-p truncation, penalties, logit bias, seeded determinism and the
// log-probabilities it returns. Stop conditions are sampling_stop.test.ts.

import { describe, expect, it } from "vitest";
import { SamplingParamError, createSampler, validateSamplingParams } from "../../src/models/sampling/index.js";
import type { SamplingParams } from "../../src/models/sampling/index.js";
import { seedKey, uniformAt } from "../../src/models/sampling/rng.js";

const logitsOf = (probs: number[]) => Float32Array.from(probs, (p) => Math.log(p));

/** Counts of each id over n draws from one sampler. */
function histogram(params: SamplingParams, logits: Float32Array, n: number): number[] {
  const s = createSampler(params);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits).id]!++;
  return counts;
}

describe("sampling parameters", () => {
  it("fills neutral defaults and a random seed", () => {
    const p = validateSamplingParams({});
    expect(p).toMatchObject({ temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, topLogprobs: 0 });
    expect(Number.isSafeInteger(p.seed)).toBe(true);
  });

  it.each<[SamplingParams, string, string]>([
    [{ topP: 0 }, "topP", "topP must be in (0, 1], got 0"],
    [{ topP: 1.5 }, "topP", "topP must be in (0, 1], got 1.5"],
    [{ temperature: -1 }, "temperature", "temperature must be a finite number >= 0 (0 = greedy), got -1"],
    [{ temperature: NaN }, "temperature", "temperature must be"],
    [{ topK: 2.5 }, "topK", "topK must be an integer >= 0"],
    [{ minP: 2 }, "minP", "minP must be in [0, 1], got 2"],
    [{ repetitionPenalty: 0 }, "repetitionPenalty", "repetitionPenalty must be a finite number > 0"],
    [{ presencePenalty: 3 }, "presencePenalty", "presencePenalty must be in [-2, 2], got 3"],
    [{ frequencyPenalty: -2.5 }, "frequencyPenalty", "frequencyPenalty must be in [-2, 2]"],
    [{ seed: -1 }, "seed", "seed must be an integer in [0, 2^53), got -1"],
    [{ topLogprobs: 1000 }, "topLogprobs", "topLogprobs must be an integer in [0, 100], got 1000"],
    [{ logitBias: { 3: Infinity } }, "logitBias", "logitBias values must be finite numbers or -Infinity (token 3), got Infinity"],
    [{ logitBias: new Map([[-1, 1]]) }, "logitBias", "logitBias keys must be token ids"],
    [{ temperature: "1" as unknown as number }, "temperature", 'got "1"'],
  ])("%j fails naming %s", (params, field, message) => {
    let err: unknown;
    try {
      validateSamplingParams(params);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SamplingParamError);
    expect((err as SamplingParamError).field).toBe(field);
    expect((err as Error).message).toContain(message);
  });

  it("rejects unknown fields, e.g. a snake_case spelling", () => {
    expect(() => validateSamplingParams({ top_p: 0.5 } as SamplingParams)).toThrow("unknown sampling parameter 'top_p'");
  });
});

describe("sampler", () => {
  it("greedy takes the argmax (lowest id on a tie) with its log-softmax", () => {
    const s = createSampler({ temperature: 0 });
    const r = s.sample(Float32Array.of(1, 3, 3, -2));
    expect(r.id).toBe(1);
    const z = Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(-2));
    expect(r.logprob).toBeCloseTo(3 - z, 12);
  });

  it("top logprobs are the log-softmax of the final distribution, most likely first", () => {
    const logits = Float32Array.of(0.5, 2, -1, 1, 2);
    const r = createSampler({ temperature: 0, topLogprobs: 3 }).sample(logits);
    expect(r.top!.map((t) => t.id)).toEqual([1, 4, 3]);
    const all = createSampler({ temperature: 0, topLogprobs: 5 }).sample(logits).top!;
    expect(all.reduce((a, t) => a + Math.exp(t.logprob), 0)).toBeCloseTo(1, 12);
    // After truncation the distribution is renormalised over what is left: top-k 2 of equal logits is 50/50.
    const k2 = createSampler({ temperature: 1, topK: 2, topLogprobs: 5, seed: 1 }).sample(logits);
    expect(k2.top!.map((t) => t.id)).toEqual([1, 4]);
    expect(k2.logprob).toBeCloseTo(Math.log(0.5), 12);
  });

  it("logprobsMode raw: the model's log-softmax, whatever bias, temperature and truncation did to the draw", () => {
    const logits = Float32Array.of(0.5, 2, -1, 1, 2.5);
    const z = Math.log(Array.from(logits).reduce((a, v) => a + Math.exp(v), 0));
    const r = createSampler({ temperature: 0.7, topP: 0.01, logitBias: { 1: 10 }, topLogprobs: 2, seed: 4, logprobsMode: "raw" }).sample(logits);
    expect(r.id).toBe(1);
    expect(r.logprob).toBeCloseTo(2 - z, 6);
    expect(r.top!.map((t) => t.id)).toEqual([4, 1]);
    expect(r.top![0]!.logprob).toBeCloseTo(2.5 - z, 6);
    expect(() => createSampler({ logprobsMode: "final" as "raw" })).toThrow(/logprobsMode/);
  });

  it("the same seed gives the same tokens; another seed gives others", () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
    const run = (seed: number) => {
      const s = createSampler({ seed, temperature: 1.2 });
      return Array.from({ length: 40 }, () => s.sample(logits).id);
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
    expect(run(2 ** 40 + 42)).not.toEqual(run(42)); // the seed's high half matters too
    expect(createSampler({ seed: 7 }).params.seed).toBe(7);
  });

  it("temperature 1 draws from the softmax", () => {
    const probs = [0.5, 0.25, 0.125, 0.125];
    const n = 8000;
    const counts = histogram({ seed: 3 }, logitsOf(probs), n);
    // NOTE: 5 standard deviations of a binomial: fails by chance far less than once in a million runs.
    counts.forEach((c, i) => expect(Math.abs(c / n - probs[i]!)).toBeLessThan(5 * Math.sqrt((probs[i]! * (1 - probs[i]!)) / n)));
  });

  it("a low temperature sharpens the distribution, a high one flattens it", () => {
    const logits = logitsOf([0.4, 0.3, 0.2, 0.1]);
    const cold = createSampler({ temperature: 0.25, topLogprobs: 4, seed: 0 }).sample(logits).top!;
    const hot = createSampler({ temperature: 4, topLogprobs: 4, seed: 0 }).sample(logits).top!;
    expect(Math.exp(cold[0]!.logprob)).toBeGreaterThan(0.6);
    expect(Math.exp(hot[0]!.logprob)).toBeLessThan(0.3);
    // A tiny temperature behaves like greedy and never overflows.
    expect(createSampler({ temperature: 1e-30, seed: 5 }).sample(Float32Array.of(80, 88, 87)).id).toBe(1);
  });

  it("top-k keeps the k most likely", () => {
    const counts = histogram({ topK: 2, seed: 11 }, logitsOf([0.1, 0.4, 0.2, 0.3]), 400);
    expect(counts[0]).toBe(0);
    expect(counts[2]).toBe(0);
    expect(counts[1]! + counts[3]!).toBe(400);
    // top-k 1 is greedy whatever the temperature.
    expect(histogram({ topK: 1, temperature: 5, seed: 1 }, logitsOf([0.1, 0.4, 0.2, 0.3]), 50)[1]).toBe(50);
  });

  it("top-p keeps the smallest set reaching p", () => {
    const logits = logitsOf([0.05, 0.5, 0.15, 0.3]);
    const kept = (topP: number) => createSampler({ topP, topLogprobs: 4, seed: 2 }).sample(logits).top!.map((t) => t.id);
    expect(kept(0.45)).toEqual([1]);
    expect(kept(0.79)).toEqual([1, 3]);
    expect(kept(0.81)).toEqual([1, 3, 2]);
    expect(kept(1)).toEqual([1, 3, 2, 0]);
  });

  it("min-p drops tokens below min_p times the best probability", () => {
    const logits = logitsOf([0.05, 0.5, 0.15, 0.3]);
    const kept = createSampler({ minP: 0.25, topLogprobs: 4, seed: 2 }).sample(logits).top!.map((t) => t.id);
    expect(kept).toEqual([1, 3, 2]); // 0.15 >= 0.25 * 0.5, 0.05 is not
  });

  it("repetition penalty divides positive and multiplies negative logits of seen tokens", () => {
    const r = createSampler({ temperature: 0, repetitionPenalty: 2, topLogprobs: 4 }).sample(Float32Array.of(2, -1, 0.5, 0), [0, 1, 0]);
    const lp = new Map(r.top!.map((t) => [t.id, t.logprob]));
    expect(lp.get(0)! - lp.get(3)!).toBeCloseTo(1, 6); // 2 / 2
    expect(lp.get(1)! - lp.get(3)!).toBeCloseTo(-2, 6); // -1 * 2
    expect(lp.get(2)! - lp.get(3)!).toBeCloseTo(0.5, 6); // unseen: unchanged
    expect(r.id).toBe(0);
  });

  it("presence and frequency penalties subtract once and per occurrence", () => {
    const r = createSampler({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.25, topLogprobs: 3 })
      .sample(Float32Array.of(1, 1, 1), [0, 0, 0, 1]);
    const lp = new Map(r.top!.map((t) => [t.id, t.logprob]));
    expect(lp.get(0)! - lp.get(2)!).toBeCloseTo(-(0.5 + 3 * 0.25), 6);
    expect(lp.get(1)! - lp.get(2)!).toBeCloseTo(-(0.5 + 0.25), 6);
    expect(r.id).toBe(2);
  });

  it("logit bias shifts tokens and -Infinity bans them", () => {
    const logits = Float32Array.of(3, 1, 0);
    expect(createSampler({ temperature: 0, logitBias: { 2: 5 } }).sample(logits).id).toBe(2);
    expect(createSampler({ temperature: 0, logitBias: new Map([[0, -Infinity]]) }).sample(logits).id).toBe(1);
    const counts = histogram({ temperature: 2, logitBias: { 0: -Infinity }, seed: 9 }, logits, 300);
    expect(counts[0]).toBe(0);
  });

  it("reports impossible requests and broken logits clearly", () => {
    const ban = { 0: -Infinity, 1: -Infinity };
    expect(() => createSampler({ logitBias: ban }).sample(Float32Array.of(1, 2))).toThrow("every token of the vocabulary (size 2) is banned by logitBias");
    expect(() => createSampler({ logitBias: { 7: 1 } }).sample(Float32Array.of(1, 2))).toThrow("logitBias names token 7, outside the vocabulary (size 2)");
    expect(() => createSampler().sample(Float32Array.of(1, NaN))).toThrow("logits[1] is NaN");
    expect(() => createSampler({ repetitionPenalty: 1.1 }).sample(Float32Array.of(1, 2), [5])).toThrow("history[0] = 5 is not a token id");
  });

  it("draw n depends only on the seed and n, whatever the logits before", () => {
    const a = createSampler({ seed: 123 });
    const b = createSampler({ seed: 123 });
    const flat = new Float32Array(1000);
    a.sample(Float32Array.of(5, 0)); // a different first step...
    b.sample(flat);
    expect(a.sample(flat).id).toBe(b.sample(flat).id); // ...the same second draw
  });

  it("a sampler resumed at draw N gives the uninterrupted sampler's tokens and log-probabilities from there", () => {
    const params = { seed: 7, temperature: 0.9, topK: 40, topLogprobs: 2 };
    // Different logits each step (a little LCG), over a vocabulary of 300.
    let state = 1;
    const steps = Array.from({ length: 12 }, () => Float32Array.from({ length: 300 }, () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 6));
    const whole = createSampler(params);
    const want = steps.map((l) => whole.sample(l));
    const resumed = createSampler(params, 5);
    expect(steps.slice(5).map((l) => resumed.sample(l))).toEqual(want.slice(5));
    expect(new Set(want.map((r) => r.id)).size).toBeGreaterThan(3); // the draws differ: the check has teeth
  });

  it("resuming skips the draws without replaying them: at draw 10^12 each call uses the stream's next draw", () => {
    // Two equally likely tokens: token 0 exactly when the draw's uniform is below 1/2.
    const N = 1e12;
    const s = createSampler({ seed: 99, temperature: 1 }, N);
    const got = Array.from({ length: 16 }, () => s.sample(logitsOf([0.5, 0.5])).id);
    expect(got).toEqual(Array.from({ length: 16 }, (_, i) => (uniformAt(seedKey(99), N + i) < 0.5 ? 0 : 1)));
  });

  it("rejects a first draw that is not an integer >= 0", () => {
    expect(() => createSampler({}, -1)).toThrow("createSampler: firstDraw must be an integer >= 0, got -1");
    expect(() => createSampler({}, 1.5)).toThrow("got 1.5");
  });
});
