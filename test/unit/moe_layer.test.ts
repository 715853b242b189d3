// The MoE layer (src/nn/moe.ts, router.ts) against references written independently of it:
//   - k = E and unlimited capacity: a dense mixture, sum_e softmax_e(x Wr^T) * SwiGLU_e(x), with every
//     expert run on every token by plain matmuls: outputs and all gradients equal;
//   - k = 2 with a capacity that drops tokens: a host (JS loop) reference of top-k, renormalised gates,
//     capacity slots (first choices first, earlier tokens first), outputs, dropped count and aux loss;
//   - float64 central finite differences of a loss through the router, the gates and the experts (k = 2,
//     tokens dropped), and a jit-captured forward replayed on new inputs.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, gradients, jit, matmul, noGrad, silu, softmax, tensor } from "../../src/index.js";
import { Module } from "../../src/nn/index.js";
import type { MoeConfig } from "../../src/nn/moe.js";
import { MoeFeedForward } from "../../src/nn/moe.js";
import { expertCapacity } from "../../src/nn/router.js";
import { rng } from "../conformance/harness.js";

const cpu = await getBackend("cpu");
const [D, H] = [6, 5];

class Holder extends Module {
  readonly moe: MoeFeedForward;
  constructor(cfg: MoeConfig) {
    super();
    this.moe = new MoeFeedForward((n, m) => this.addModule(n, m), D, H, cfg, { backend: cpu, dtype: "f64" });
  }
}

/** A layer with random f64 weights (std 0.5: routing decisive, experts non-trivial) and its host copies. */
async function layer(cfg: MoeConfig, seed: number): Promise<{ h: Holder; w: Map<string, Float64Array> }> {
  const h = new Holder(cfg);
  const r = rng(seed);
  const state = new Map<string, Tensor>();
  const w = new Map<string, Float64Array>();
  for (const [name, p] of h.parameters()) {
    const v = Float64Array.from({ length: p.numel }, () => (r() - 0.5) * (name.includes("gate_inp") ? 3 : 1));
    w.set(name, v);
    const t = tensor(v, { backend: cpu, dtype: "f64", shape: p.shape });
    t.requiresGrad = true;
    state.set(name, t);
  }
  h.loadStateDict(state);
  return { h, w };
}

const input = (n: number, seed: number) => {
  const r = rng(seed);
  return tensor(Float64Array.from({ length: n * D }, () => r() * 2 - 1), { backend: cpu, dtype: "f64", shape: [n, D] });
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** SwiGLU expert e of the layer on rows x (R, D), from slices of its stacked weights. */
function expert(h: Holder, e: number, x: Tensor): Tensor {
  const pick = (w: Tensor) => w.slice(0, e, e + 1).squeeze(0);
  const g = matmul(x, pick(h.moe.gate.weight).transpose());
  const u = matmul(x, pick(h.moe.up.weight).transpose());
  return matmul(silu(g).mul(u), pick(h.moe.down.weight).transpose());
}

/** Host reference of the routed forward: outputs (N*D), dropped count, aux loss. */
function hostMoe(w: Map<string, Float64Array>, x: Float64Array, n: number, e: number, k: number, cap: number) {
  const wr = w.get("ffn_gate_inp.weight")!;
  const [wg, wu, wd] = ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].map((p) => w.get(`${p}.weight`)!) as [Float64Array, Float64Array, Float64Array];
  const probs: number[][] = [];
  for (let t = 0; t < n; t++) {
    const logits = Array.from({ length: e }, (_, i) => Array.from({ length: D }, (_, j) => x[t * D + j]! * wr[i * D + j]!).reduce((a, b) => a + b));
    const m = Math.max(...logits);
    const ex = logits.map((l) => Math.exp(l - m));
    const s = ex.reduce((a, b) => a + b);
    probs.push(ex.map((v) => v / s));
  }
  const choice = probs.map((p) => p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i));
  const fill = new Array<number>(e).fill(0);
  const kept: boolean[][] = choice.map(() => []);
  for (let j = 0; j < k; j++) for (let t = 0; t < n; t++) kept[t]![j] = fill[choice[t]![j]!]!++ < cap;
  const out = new Float64Array(n * D);
  let dropped = 0;
  for (let t = 0; t < n; t++) {
    const total = choice[t]!.reduce((s, i) => s + probs[t]![i]!, 0);
    choice[t]!.forEach((ei, j) => {
      if (!kept[t]![j]) return dropped++;
      const hid = Array.from({ length: H }, (_, o) => {
        let g = 0;
        let u = 0;
        for (let i = 0; i < D; i++) {
          g += x[t * D + i]! * wg[(ei * H + o) * D + i]!;
          u += x[t * D + i]! * wu[(ei * H + o) * D + i]!;
        }
        return (g / (1 + Math.exp(-g))) * u;
      });
      for (let o = 0; o < D; o++) {
        let y = 0;
        for (let i = 0; i < H; i++) y += hid[i]! * wd[(ei * D + o) * H + i]!;
        out[t * D + o]! += (probs[t]![ei]! / total) * y;
      }
    });
  }
  const frac = fill.map((c) => c / (n * k));
  const meanP = Array.from({ length: e }, (_, i) => probs.reduce((s, p) => s + p[i]!, 0) / n);
  const aux = e * frac.reduce((s, f, i) => s + f * meanP[i]!, 0);
  return { out, dropped, aux };
}

describe("MoE layer", () => {
  it("with k = E and unlimited capacity equals the dense mixture, outputs and every gradient", async () => {
    const E = 3;
    const { h } = await layer({ numExperts: E, topK: E }, 1);
    const x = input(7, 2);
    x.requiresGrad = true;
    const params = [...h.parameters().values()];
    const { out, stats } = h.moe.forward(x);
    const probs = softmax(h.moe.router.forward(x), -1);
    let dense: Tensor | undefined;
    for (let e = 0; e < E; e++) {
      const part = expert(h, e, x).mul(probs.slice(1, e, e + 1));
      dense = dense ? dense.add(part) : part;
    }
    const seed = input(7, 3);
    const wrt = [x, ...params];
    const gMoe = gradients([out], wrt, [seed]);
    const gDense = gradients([dense!], wrt, [seed]);
    expect(maxDiff((await out.data()) as Float64Array, (await dense!.data()) as Float64Array)).toBeLessThan(1e-12);
    for (let i = 0; i < wrt.length; i++) {
      const [a, b] = [(await gMoe[i]!.data()) as Float64Array, (await gDense[i]!.data()) as Float64Array];
      expect(maxDiff(a, b), `gradient ${i}`).toBeLessThan(1e-12);
    }
    expect(await stats.dropped.item()).toBe(0);
    // Every token picks every expert: f_e = 1/E, so the loss is sum_e P_e = 1.
    expect(await stats.auxLoss.item()).toBeCloseTo(1, 12);
  });

  it("with k = 2 and a small capacity routes, drops and weighs as the host reference", async () => {
    const [E, N, k, cf] = [4, 16, 2, 0.75];
    const cap = expertCapacity(N, E, k, cf);
    expect(cap).toBe(6);
    const { h, w } = await layer({ numExperts: E, topK: k, capacityFactor: cf }, 5);
    const x = input(N, 6);
    const { out, stats } = noGrad(() => h.moe.forward(x));
    const want = hostMoe(w, (await x.data()) as Float64Array, N, E, k, cap);
    expect(want.dropped).toBeGreaterThan(0); // the case exercises dropping
    expect(await stats.dropped.item()).toBe(want.dropped);
    expect(maxDiff((await out.data()) as Float64Array, want.out)).toBeLessThan(1e-12);
    expect(await stats.auxLoss.item()).toBeCloseTo(want.aux, 12);
    // Unlimited capacity drops nothing and gives the host reference without capacity.
    const free = await layer({ numExperts: E, topK: k }, 5);
    const all = noGrad(() => free.h.moe.forward(x));
    expect(await all.stats.dropped.item()).toBe(0);
    expect(maxDiff((await all.out.data()) as Float64Array, hostMoe(w, (await x.data()) as Float64Array, N, E, k, N).out)).toBeLessThan(1e-12);
  });

  it("has the gradients of float64 finite differences through router, gates and experts (tokens dropped)", async () => {
    const [E, N, k] = [4, 10, 2];
    const cfg = { numExperts: E, topK: k, capacityFactor: 1, routerAuxLossCoef: 0.3 };
    const { h, w } = await layer(cfg, 9);
    const x = input(N, 10);
    const proj = input(N, 11);
    // A scalar of the output and the aux loss, so both reach every router weight.
    const loss = () => {
      const { out, stats } = h.moe.forward(x);
      return out.mul(proj).sum().add(stats.auxLoss.mul(0.3));
    };
    expect(await noGrad(() => h.moe.forward(x)).stats.dropped.item()).toBeGreaterThan(0);
    const params = h.parameters();
    const grads = gradients([loss()], [...params.values()], [x.full([], 1)]);
    const r = rng(12);
    const eps = 1e-6;
    let i = 0;
    for (const [name, p] of params) {
      const g = (await grads[i++]!.data()) as Float64Array;
      const u = Float64Array.from(g, () => r() - 0.5);
      const at = (s: number) => {
        const shifted = tensor(Float64Array.from(w.get(name)!, (v, j) => v + s * u[j]!), { backend: cpu, dtype: "f64", shape: p.shape });
        h.loadStateDict(new Map(params).set(name, shifted));
        return noGrad(loss).item();
      };
      const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      h.loadStateDict(params);
      const analytic = g.reduce((s, gi, j) => s + gi * u[j]!, 0);
      expect(Math.abs(analytic), name).toBeGreaterThan(1e-4); // the direction matters to the loss
      expect(Math.abs(fd - analytic), name).toBeLessThan(1e-7 + 1e-6 * Math.abs(analytic));
    }
  });

  it("runs jit-captured: a replay on new tokens equals the eager forward", async () => {
    const cfg = { numExperts: 4, topK: 2, capacityFactor: 1 };
    const { h } = await layer(cfg, 13);
    const f = jit((x: Tensor) => {
      const { out, stats } = noGrad(() => h.moe.forward(x));
      return [out, stats.dropped];
    });
    for (const seed of [14, 15, 16]) {
      const x = input(12, seed);
      const [out, dropped] = await f(x);
      const ref = noGrad(() => h.moe.forward(x));
      expect(maxDiff((await out!.data()) as Float64Array, (await ref.out.data()) as Float64Array)).toBe(0);
      expect(await dropped!.item()).toBe(await ref.stats.dropped.item());
    }
    expect(f.launches).toBeGreaterThan(0);
  });

  it("rejects a bad configuration by name", () => {
    expect(() => new Holder({ numExperts: 4, topK: 5 })).toThrow(/topK must be an integer from 1 to numExperts \(4\), got 5/);
    expect(() => new Holder({ numExperts: 0, topK: 1 })).toThrow(/numExperts must be a positive integer/);
    expect(() => expertCapacity(8, 4, 2, 0)).toThrow(/capacityFactor must be > 0/);
  });
});
