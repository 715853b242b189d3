// nn modules: dotted parameter names, state dicts (loading checks names, shapes, dtypes), and each
// layer's forward against the same math written out by hand.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, tensor } from "../../src/index.js";
import { Embedding, LayerNorm, Linear, Module, ModuleList, RMSNorm } from "../../src/nn/index.js";

const cpu = await getBackend("cpu");
const t = (data: number[], shape: number[]) => tensor(data, { backend: cpu, shape });
const close = (got: ArrayLike<number>, want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(tol * (1 + Math.abs(w))));
};

class Block extends Module {
  readonly norm = this.addModule("norm", new RMSNorm(2, 1e-5, { backend: cpu }));
  readonly proj = this.addModule("proj", new Linear(2, 3, { backend: cpu, bias: true }));
}
class Net extends Module {
  readonly embd = this.addModule("embd", new Embedding(4, 2, { backend: cpu }));
  readonly blk = this.addModule("blk", new ModuleList([new Block(), new Block()]));
}

describe("Module", () => {
  it("names parameters by their dotted path, in registration order", () => {
    expect([...new Net().parameters().keys()]).toEqual([
      "embd.weight",
      "blk.0.norm.weight", "blk.0.proj.weight", "blk.0.proj.bias",
      "blk.1.norm.weight", "blk.1.proj.weight", "blk.1.proj.bias",
    ]);
    expect(new Net().parameters().get("blk.1.proj.weight")!.shape).toEqual([3, 2]);
  });

  it("loads a state dict and hands back the same tensors", () => {
    const net = new Net();
    const state = new Map<string, Tensor>([...net.parameters()].map(([k, p]) => [k, t(Array.from({ length: p.numel }, (_, i) => i), [...p.shape])]));
    net.loadStateDict(state);
    expect(net.blk.at(1).proj.bias).toBe(state.get("blk.1.proj.bias"));
    expect(net.stateDict().get("embd.weight")).toBe(state.get("embd.weight"));
  });

  it("rejects missing and unexpected keys, wrong shapes and wrong dtypes, naming the key", () => {
    const net = new Net();
    const good = () => new Map([...net.parameters()].map(([k, p]) => [k, t(new Array(p.numel).fill(0), [...p.shape])]));
    const missing = good();
    missing.delete("blk.0.proj.bias");
    expect(() => net.loadStateDict(missing)).toThrow(/missing 'blk.0.proj.bias'/);
    const extra = good().set("blk.2.norm.weight", t([1, 1], [2]));
    expect(() => net.loadStateDict(extra)).toThrow(/unexpected 'blk.2.norm.weight'/);
    const shape = good().set("blk.1.proj.weight", t(new Array(6).fill(0), [2, 3]));
    expect(() => net.loadStateDict(shape)).toThrow(/'blk.1.proj.weight' has shape \(2, 3\), expected \(3, 2\)/);
    const dtype = good().set("embd.weight", tensor(new Array(8).fill(0), { backend: cpu, shape: [4, 2], dtype: "f64" }));
    expect(() => net.loadStateDict(dtype)).toThrow(/'embd.weight' is f64, expected f32/);
  });
});

describe("layers", () => {
  it("Linear is x @ W^T + b", async () => {
    const lin = new Linear(3, 2, { backend: cpu, bias: true });
    lin.loadStateDict(new Map([["weight", t([1, 2, 3, -1, 0, 2], [2, 3])], ["bias", t([0.5, -0.5], [2])]]));
    const y = lin.forward(t([1, 1, 1, 2, 0, -1], [2, 3]));
    expect(y.shape).toEqual([2, 2]);
    close(await y.data(), [6.5, 0.5, -0.5, -4.5]);
    // Leading axes pass through.
    expect(lin.forward(t(new Array(12).fill(1), [2, 2, 3])).shape).toEqual([2, 2, 2]);
  });

  it("Embedding picks rows", async () => {
    const e = new Embedding(3, 2, { backend: cpu });
    e.loadStateDict(new Map([["weight", t([0, 1, 10, 11, 20, 21], [3, 2])]]));
    const ids = tensor([2, 0, 2, 1], { backend: cpu, dtype: "i32", shape: [2, 2] });
    const y = e.forward(ids);
    expect(y.shape).toEqual([2, 2, 2]);
    close(await y.data(), [20, 21, 0, 1, 20, 21, 10, 11]);
  });

  it("RMSNorm and LayerNorm normalise the last axis", async () => {
    const x = [1, 2, 3, 4, -1, 0, 1, 2];
    const rms = new RMSNorm(4, 1e-6, { backend: cpu });
    rms.loadStateDict(new Map([["weight", t([1, 2, 1, 0.5], [4])]]));
    const want: number[] = [];
    for (const row of [x.slice(0, 4), x.slice(4)]) {
      const r = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 4 + 1e-6);
      want.push(...row.map((v, i) => v * r * [1, 2, 1, 0.5][i]!));
    }
    close(await rms.forward(t(x, [2, 4])).data(), want);

    const ln = new LayerNorm(4, 1e-6, { backend: cpu });
    ln.loadStateDict(new Map([["weight", t([1, 2, 1, 0.5], [4])], ["bias", t([0, 1, 0, -1], [4])]]));
    const wantLn: number[] = [];
    for (const row of [x.slice(0, 4), x.slice(4)]) {
      const mean = row.reduce((s, v) => s + v, 0) / 4;
      const r = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / 4 + 1e-6);
      wantLn.push(...row.map((v, i) => (v - mean) * r * [1, 2, 1, 0.5][i]! + [0, 1, 0, -1][i]!));
    }
    close(await ln.forward(t(x, [2, 4])).data(), wantLn);
  });
});
