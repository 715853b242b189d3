// plan_serve_extras.test.ts: issue 15's serving additions: prefix-cache hits, speculative decoding,
// pipeline stages over nodes for a model one node cannot hold (405B in bf16 on 8 H100s), and the
// M/G/c queue's wait and p99 TTFT against the SLA. Expected values are worked out by hand here, from
// the model's shape and the GPU table's figures; the queue's against the textbook closed forms.

import { describe, expect, it } from "vitest";
import { IDEAL_COMM, erlangC, findGpu, findPreset, planServe, queueWait } from "../../src/plan/index.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";

const h100 = findGpu("h100");
const llama8 = findPreset("llama-8b")!;
const T = 1e12;
// llama3-8b: matmul weights 32 (2·4096² + 2·4096·1024 + 3·4096·14336) + the head 128256·4096
const N8 = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 128256 * 4096;

describe("prefix cache", () => {
  it("prefill runs only on the uncached tokens (attending to the whole prefix); the prefix's KV is stored once", () => {
    const req = { model: llama8, gpu: h100, precision: "bf16" as const, contextLength: 8192, promptTokens: 6144, outputTokens: 1024 };
    const hit = planServe({ ...req, prefixHitRate: 0.5 }).candidates.find((c) => c.tp === 1)!;
    // tokens 3072..6143 of the prompt: 2N x 3072 + attention 4 x 32 layers x 4096 x (sum of p + 1 for p = 3072..6143)
    const attention = 4 * 32 * 4096 * ((6144 * 6145) / 2 - (3072 * 3073) / 2);
    expect(hit.prefillS).toBeCloseTo((2 * N8 * 3072 + attention) / (0.7 * 989.4 * T), 12);
    // a request keeps 6144 + 1024 - 3072 tokens of its own; the 3072-token prefix is held once
    expect(hit.maxBatch).toBe(Math.min(256, Math.floor((hit.kvTokens - 3072) / 4096)));
    const miss = planServe(req).candidates.find((c) => c.tp === 1)!;
    expect(miss.maxBatch).toBe(Math.min(256, Math.floor(miss.kvTokens / 7168)));
    expect(hit.prefillS / miss.prefillS).toBeLessThan(0.55);
  });

  it("a hit rate outside [0, 1) is refused by name", () => {
    expect(() => planServe({ model: llama8, gpu: h100, precision: "bf16", contextLength: 8192, promptTokens: 100, outputTokens: 100, prefixHitRate: 1 })).toThrow(/--prefix-hit: 1 is not a share/);
  });
});

describe("speculative decoding", () => {
  it("at batch 1 (memory bound) a token costs (1 + c k) / E of a step, E = (1 - a^(k+1)) / (1 - a): Leviathan's speed-up", () => {
    const req = { model: llama8, gpu: h100, precision: "bf16" as const, contextLength: 8192, promptTokens: 2048, outputTokens: 512 };
    const plain = planServe(req).candidates.find((c) => c.tp === 1)!;
    const spec = planServe({ ...req, spec: { k: 4, accept: 0.8, draftCost: 0.05 } }).candidates.find((c) => c.tp === 1)!;
    // E = (1 - 0.8^5) / 0.2 = 3.3616; speed-up 3.3616 / (1 + 0.05 x 4) = 2.8013
    expect(plain.stepBatch1S / spec.stepBatch1S).toBeCloseTo((1 - 0.8 ** 5) / (0.2 * 1.2), 9);
    expect(spec.decodeTokensPerS).toBeGreaterThan(plain.decodeTokensPerS);
  });

  it("bad speculative settings name the flag", () => {
    const req = { model: llama8, gpu: h100, precision: "bf16" as const, contextLength: 8192, promptTokens: 100, outputTokens: 100 };
    expect(() => planServe({ ...req, spec: { k: 4, accept: 1, draftCost: 0.05 } })).toThrow(/--spec-accept: 1 is not an acceptance rate in \[0, 1\)/);
    expect(() => planServe({ ...req, spec: { k: 0, accept: 0.5, draftCost: 0.05 } })).toThrow(/--spec-k: 0/);
  });
});

describe("pipeline stages over nodes", () => {
  it("405B in bf16 does not fit 8 H100s; 2 nodes of tp=8 do, each token passing 2 stages and 1 network hop", () => {
    const p = planServe({ model: findPreset("llama-405b")!, gpu: h100, precision: "bf16", contextLength: 8192, promptTokens: 2048, outputTokens: 512, comm: IDEAL_COMM });
    expect(p.candidates.find((c) => c.tp === 8 && c.pp === 1)!.fits).toBe(false);
    const b = p.best!;
    expect([b.tp, b.pp]).toEqual([8, 2]);
    // 126 layers of 2·16384² + 2·16384·1024 (attention) + 3·16384·53248 (MLP) + 2·16384 (norms), embedding and head 128256·16384 each, final norm
    const total = 126 * (2 * 16384 * 16384 + 2 * 16384 * 1024 + 3 * 16384 * 53248 + 2 * 16384) + 2 * 128256 * 16384 + 16384;
    expect(b.weightsBytesPerGpu).toBeCloseTo((total * 2) / 16, 0);
    // a stage's GPU reads its 1/16 of the weights and its KV (63 layers x 1 KV head x 128 x 2 x 2 bytes
    // a token, at the mean context 2048 + 256) at 0.8 x 3.35 TB/s, and all-reduces 2 x 63 times 16384 x 2
    // bytes over NVLink (ideal: 2 x 7/8 x bytes / 450 GB/s); one hop sends 16384 x 2 bytes at 50 GB/s.
    const stage = ((total * 2) / 16 + 2304 * 63 * 128 * 2 * 2) / (0.8 * 3.35 * T) + 2 * 63 * ((2 * 7) / 8) * (16384 * 2) / 450e9;
    expect(b.stepBatch1S).toBeCloseTo(2 * stage + (16384 * 2) / 50e9, 12);
    expect(b.gpus).toBe(16 * b.instances.total);
  });
});

describe("queueing: M/G/c", () => {
  // Erlang C from its closed form: (a^c / c!) / (1 - ρ) / (sum_{k<c} a^k / k! + (a^c / c!) / (1 - ρ))
  const closedForm = (c: number, a: number): number => {
    let term = 1;
    let sum = 0;
    for (let k = 0; k < c; k++) {
      sum += term;
      term = (term * a) / (k + 1);
    }
    const top = term / (1 - a / c);
    return top / (sum + top);
  };

  it("Erlang C matches its closed form and the textbook values", () => {
    expect(erlangC(1, 0.5)).toBeCloseTo(0.5, 12); // M/M/1: ρ
    expect(erlangC(2, 1)).toBeCloseTo(1 / 3, 12);
    for (const [c, a] of [[5, 4], [20, 15], [64, 60]] as const) expect(erlangC(c, a)).toBeCloseTo(closedForm(c, a), 10);
  });

  it("the wait: M/M/1's ρ/(μ - λ) and P(W > t) = ρ e^{-(μ-λ)t}; Allen-Cunneen halves it for fixed service times", () => {
    const mm1 = queueWait({ arrivalsPerS: 0.5, servers: 1, serviceS: 1, serviceScv: 1 });
    expect(mm1.meanWaitS).toBeCloseTo(1, 12);
    expect(mm1.p99WaitS).toBeCloseTo(Math.log(50) / 0.5, 12);
    const md1 = queueWait({ arrivalsPerS: 0.5, servers: 1, serviceS: 1, serviceScv: 0 });
    expect(md1.meanWaitS).toBeCloseTo(0.5, 12); // Pollaczek-Khinchine for M/D/1: ρ / (2 μ (1 - ρ))
    expect(() => queueWait({ arrivalsPerS: 2, servers: 1, serviceS: 1, serviceScv: 1 })).toThrow(/200% utilization/);
  });

  it("adds instances until the p99 TTFT meets the target, and one fewer would not", () => {
    // a per-token target that caps the batch at 72 slots an instance: one instance would run at 89%
    // utilization and its p99 wait would break the 1 s TTFT, so a second is added
    const req = { model: findPreset("llama-70b")!, gpu: h100, precision: "bf16" as const, contextLength: 8192, promptTokens: 2048, outputTokens: 512, requestsPerSecond: 4, tpotTargetS: 0.019, ttftTargetS: 1, spareInstances: 0 };
    const b = planServe(req).best!;
    const q = b.queue!;
    expect(q.p99TtftS).toBeLessThanOrEqual(1);
    expect(q.p99TtftS).toBeCloseTo(b.prefillS + q.p99WaitS, 12);
    const service = b.maxBatch / b.requestsPerSecondPerInstance; // a slot is held for maxBatch x the busy time
    const p99 = (n: number) => {
      const c = n * b.maxBatch;
      const C = closedForm(c, 4 * service);
      return C <= 0.01 ? 0 : Math.log(100 * C) / (c / service - 4);
    };
    expect(b.prefillS + p99(q.instances)).toBeLessThanOrEqual(1);
    expect(b.instances.queueing!).toBeGreaterThan(0);
    const fewer = q.instances - 1;
    expect(fewer * b.maxBatch <= 4 * service || b.prefillS + p99(fewer) > 1).toBe(true);
  });
});

describe("kiln plan serve with the additions", () => {
  it("prints the prefix cache, speculative decoding and queueing lines; a bad flag exits 2 naming it", async () => {
    const r = await runProcess(process.execPath, [KILN_BIN, "plan", "serve", "--model", "llama-70b", "--gpu", "h100", "--rps", "5", "--prompt", "2048", "--output", "512",
      "--ttft", "1000", "--prefix-hit", "50%", "--spec-k", "4", "--spec-accept", "0.7", "--spec-draft-cost", "0.05"], { timeoutMs: 50_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/prefix cache: 1024 of 2048 prompt tokens hit/);
    expect(r.stdout).toMatch(/speculative decoding: k=4 at acceptance 0.7: 2.77 tokens per target step/);
    expect(r.stdout).toMatch(/queueing \(M\/G\/c, Erlang C with Allen-Cunneen.*p99 TTFT/);
    const bad = await runProcess(process.execPath, [KILN_BIN, "plan", "serve", "--model", "llama-70b", "--gpu", "h100", "--prompt", "2048", "--output", "512", "--spec-k", "4"], { timeoutMs: 50_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/needs all of --spec-k, --spec-accept and --spec-draft-cost \(missing --spec-accept, --spec-draft-cost\)/);
  }, 110_000);
});
