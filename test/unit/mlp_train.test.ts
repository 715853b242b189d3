// A two-layer MLP trained with the core on a small synthetic task: the loss falls, and every backend
// present reaches the same loss as cpu within 1e-4 (the Core issue's acceptance check).

import { describe, expect, it } from "vitest";
import type { Backend, Tensor } from "../../src/index.js";
import { crossEntropy, matmul, relu, tensor } from "../../src/index.js";
import { realize } from "../../src/core/realize.js";
import { backendsUnderTest, rng } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

const backends = await backendsUnderTest();

/** 64 points in 8-D, labelled by which of 4 fixed directions they align with most. */
function task(): { x: number[]; y: number[] } {
  const r = rng(11);
  const dirs = Array.from({ length: 4 }, () => Array.from({ length: 8 }, () => r() * 2 - 1));
  const x: number[] = [], y: number[] = [];
  for (let i = 0; i < 64; i++) {
    const p = Array.from({ length: 8 }, () => r() * 2 - 1);
    const scores = dirs.map((d) => d.reduce((s, v, j) => s + v * p[j]!, 0));
    x.push(...p);
    y.push(scores.indexOf(Math.max(...scores)));
  }
  return { x, y };
}

async function train(backend: Backend, steps: number): Promise<number[]> {
  const { x, y } = task();
  const r = rng(5);
  const init = (n: number, scale: number) => Array.from({ length: n }, () => (r() * 2 - 1) * scale);
  const X = tensor(x, { backend, shape: [64, 8] });
  const Y = tensor(y, { backend, dtype: "i32" });
  let params: Tensor[] = [
    tensor(init(8 * 16, 0.5), { backend, shape: [8, 16] }), tensor(init(16, 0.1), { backend }),
    tensor(init(16 * 4, 0.5), { backend, shape: [16, 4] }), tensor(init(4, 0.1), { backend }),
  ];
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    params.forEach((p) => (p.requiresGrad = true));
    const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
    const logits = matmul(relu(matmul(X, w1).add(b1)), w2).add(b2);
    const loss = crossEntropy(logits, Y);
    loss.backward();
    // SGD; the whole step (forward, backward, update) is realized as one schedule.
    const next = params.map((p) => p.detach().sub(p.grad!.mul(0.5)));
    await realize([loss.node, ...next.map((t) => t.node)]);
    losses.push(await loss.item());
    params = next;
  }
  return losses;
}

describe("two-layer MLP training", () => {
  it("learns on cpu (the loss falls by more than half)", async () => {
    const losses = await train(backends[0]!.backend!, 40);
    expect(losses[39]!).toBeLessThan(losses[0]! * 0.5);
  });

  for (const b of backends.filter((x) => x.name !== "cpu")) {
    it.skipIf(!b.backend)(`reaches the cpu loss within 1e-4 on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const [cpuLosses, losses] = [await train(backends[0]!.backend!, 40), await train(b.backend!, 40)];
      for (let i = 0; i < 40; i++) expect(Math.abs(losses[i]! - cpuLosses[i]!)).toBeLessThan(1e-4);
    });
  }
});
