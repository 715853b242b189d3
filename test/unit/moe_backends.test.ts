// The MoE layer (src/nn/moe.ts) on every other backend present (webgpu on SwiftShader here) against cpu:
// the routed forward (k = 2, a capacity that drops tokens), the dropped count, the aux loss and the
// gradients of every parameter and the input, in f32, within f32 tolerance.

import { describe, expect, it } from "vitest";
import type { Backend, Tensor } from "../../src/index.js";
import { getBackend, gradients, tensor } from "../../src/index.js";
import { Module } from "../../src/nn/index.js";
import { MoeFeedForward } from "../../src/nn/moe.js";
import { backendsUnderTest, rng } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");
const [D, H, N] = [8, 6, 12];

class Holder extends Module {
  readonly moe: MoeFeedForward;
  constructor(backend: Backend) {
    super();
    this.moe = new MoeFeedForward((n, m) => this.addModule(n, m), D, H, { numExperts: 4, topK: 2, capacityFactor: 1 }, { backend, dtype: "f32" });
  }
}

/** Output, dropped count, aux loss and the gradients of [x, ...parameters], read back. */
async function run(backend: Backend) {
  const h = new Holder(backend);
  const r = rng(31);
  const state = new Map<string, Tensor>();
  for (const [name, p] of h.parameters()) {
    const t = tensor(Float32Array.from({ length: p.numel }, () => (r() - 0.5) * (name.includes("gate_inp") ? 3 : 1)), { backend, shape: p.shape });
    t.requiresGrad = true;
    state.set(name, t);
  }
  h.loadStateDict(state);
  const x = tensor(Float32Array.from({ length: N * D }, () => r() * 2 - 1), { backend, shape: [N, D] });
  x.requiresGrad = true;
  const { out, stats } = h.moe.forward(x);
  const loss = out.mul(out).sum().add(stats.auxLoss);
  const grads = gradients([loss], [x, ...state.values()], [loss.full([], 1)]);
  return {
    out: Array.from((await out.data()) as Float32Array),
    dropped: await stats.dropped.item(),
    aux: await stats.auxLoss.item(),
    grads: await Promise.all(grads.map(async (g) => Array.from((await g!.data()) as Float32Array))),
  };
}

const relErr = (a: number[], b: number[]) => {
  const scale = Math.max(...b.map(Math.abs), 1e-30);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0) / scale;
};

describe("MoE layer on every backend", () => {
  for (const b of backends.filter((x) => x.name !== "cpu")) {
    it.skipIf(!b.backend)(`${b.name}: routing, output and gradients match cpu's${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const [want, got] = [await run(cpu), await run(b.backend!)];
      expect(want.dropped).toBeGreaterThan(0);
      expect(got.dropped).toBe(want.dropped);
      expect(Math.abs(got.aux - want.aux)).toBeLessThan(1e-5);
      expect(relErr(got.out, want.out)).toBeLessThan(1e-5);
      got.grads.forEach((g, i) => expect(relErr(g, want.grads[i]!), `gradient ${i}`).toBeLessThan(1e-4));
    }, 60_000);
  }
});
