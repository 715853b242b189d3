// The training graph's shape: what a backward pass schedules for the pieces a model trains through.
// Each case would have a wasteful kernel without its fix (named in the test); values are the
// gradient conformance suite's job (test/conformance/grad.test.ts), these pin the kernel list.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { crossEntropy, getBackend, gradients, matmul, tensor } from "../../src/index.js";
import { schedule } from "../../src/core/schedule.js";

const cpu = await getBackend("cpu");
const param = (shape: number[], seed: number) =>
  tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.7 + seed)), { backend: cpu, shape, requiresGrad: true });

/** The schedule's items as names: a routine's name, or a generated kernel's with its input count. */
function items(ts: readonly Tensor[]): string[] {
  return schedule(ts.map((t) => t.node)).map((it) => (it.kind === "routine" ? it.name : it.kind === "kernel" ? `${it.spec.name}/${it.inputs.length}` : it.spec.op));
}

describe("the training graph", () => {
  it("a Linear's backward reads its weight transposed in place (no weight copy per step)", () => {
    const x = param([6, 4], 1), w = param([5, 4], 2); // y = x W^T, as nn.Linear
    const [dx, dw] = gradients([matmul(x, w.transpose())], [x, w], [param([6, 5], 3)]);
    // NOTE: dW comes out of its matmul transposed and is stored as the gradient (a copy of the result,
    // which an optimizer's update would read in place); what must not be copied is W itself.
    const copiesOfW = schedule([dx!.node, dw!.node]).filter((it) => it.kind === "kernel" && it.inputs.includes(w.node));
    expect(copiesOfW.map((it) => it.out.describe())).toEqual([]);
    expect(items([dx!, dw!]).filter((n) => n === "matmul")).toHaveLength(2);
  });

  it("q, k, v sliced from one projection get their gradient joined by concat, not a sum of pads", () => {
    const qkv = param([8, 12], 1);
    const [q, k, v] = [0, 1, 2].map((i) => qkv.slice(1, i * 4, (i + 1) * 4));
    const [g] = gradients([q!.mul(k!).add(v!.exp())], [qkv], [param([8, 4], 2)]);
    const list = items([g!]);
    expect(list).toContain("concat");
    expect(list.filter((n) => n.startsWith("E_add_8x12"))).toEqual([]);
  });

  it("cross-entropy's logits gradient is one elementwise kernel after the forward's two row reductions", () => {
    const logits = param([6, 9], 1);
    const targets = tensor([0, 8, 3, 3, 1, 7], { backend: cpu, dtype: "i32" });
    const [g] = gradients([crossEntropy(logits, targets)], [logits], [tensor(1, { backend: cpu })]);
    const list = items([g!]);
    // max and sum of exp over each row (the logsumexp), then (exp(x - lse) - onehot) * g / N.
    expect(list.filter((n) => n.startsWith("R_"))).toHaveLength(2);
    expect(list.filter((n) => n.startsWith("E_"))).toHaveLength(1);
  });

  it("an embedding's gradient is a scatter_add routine", () => {
    const table = param([50, 4], 1);
    const ids = tensor([3, 7, 3, 49], { backend: cpu, dtype: "i32" });
    const [g] = gradients([table.gather(0, ids)], [table], [param([4, 4], 2)]);
    expect(items([g!])).toEqual(["scatter_add"]);
  });
});
