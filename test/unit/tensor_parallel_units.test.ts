// tensor_parallel_units.test.ts: the parts of tensor parallel that need no second process: cutting a whole
// array into ranks' slices and joining them back (fused q/k/v blocks included), against slices written out
// by hand; the vocab-parallel cross-entropy over a world of one against crossEntropy (value and gradient,
// with an out-of-range target); the tensor-parallel GPT-2 and Llama over a world of one against the
// single-process models' logits; and bad input named (vocabulary or heads that do not divide, a whole model
// of another shape, a step message too large for f32).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crossEntropy, getBackend, gradients, tensor } from "../../src/index.js";
import type { Backend } from "../../src/index.js";
import type { Communicator } from "../../src/dist/index.js";
import { createCommunicator, freePort } from "../../src/dist/index.js";
import { TpGpt2 } from "../../src/dist/tensor_parallel_gpt2.js";
import { TpLlama } from "../../src/dist/tensor_parallel_llama.js";
import { loadShards, shardArray, unshardArrays } from "../../src/dist/tensor_parallel_shard.js";
import { vocabParallelCrossEntropy } from "../../src/dist/vocab_parallel_loss.js";
import { sendBatch } from "../../src/serve/step_messages.js";
import { GPT2, LLAMA, wholeRun } from "./tensor_parallel_setup.js";

let one: Communicator;
let cpu: Backend;
beforeAll(async () => {
  cpu = await getBackend("cpu");
  one = await createCommunicator({ backend: "local", rank: 0, size: 1, masterAddr: "127.0.0.1", masterPort: await freePort("127.0.0.1") });
});
afterAll(async () => {
  await one?.close();
});

const vals = async (t: { data(): Promise<unknown> }) => Array.from((await t.data()) as Float32Array);
const maxDiff = (a: number[], b: number[]) => (a.length !== b.length ? Infinity : a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0));

describe("cutting weights over tp ranks", () => {
  it("splits rows, columns and fused blocks as written out by hand, and joins them back", () => {
    // (6, 2): rows 0-1 q, 2-3 k, 4-5 v; tp 2 gives each rank one row of each block.
    const whole = { shape: [6, 2], data: Float32Array.from({ length: 12 }, (_, i) => i) };
    const split = { kind: "split", axis: 0, parts: [2, 2, 2] } as const;
    const r0 = shardArray("qkv", whole, split, 0, 2);
    const r1 = shardArray("qkv", whole, split, 1, 2);
    expect(r0.shape).toEqual([3, 2]);
    expect(Array.from(r0.data)).toEqual([0, 1, 4, 5, 8, 9]);
    expect(Array.from(r1.data)).toEqual([2, 3, 6, 7, 10, 11]);
    expect(Array.from(unshardArrays("qkv", [6, 2], [r0.data, r1.data], split).data)).toEqual(Array.from(whole.data));
    // (2, 4) by columns over 2 ranks: rank 1 holds columns 2-3 of each row.
    const w = { shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => i) };
    const cols = { kind: "split", axis: 1, parts: [4] } as const;
    expect(Array.from(shardArray("w", w, cols, 1, 2).data)).toEqual([2, 3, 6, 7]);
    const four = [0, 1, 2, 3].map((r) => shardArray("w", w, cols, r, 4).data);
    expect(Array.from(unshardArrays("w", [2, 4], four, cols).data)).toEqual(Array.from(w.data));
  });

  it("names what does not divide or does not fit", async () => {
    const whole = { shape: [6, 2], data: new Float32Array(12) };
    expect(() => shardArray("blk.0.attn_qkv.weight", whole, { kind: "split", axis: 0, parts: [3, 3] }, 0, 2)).toThrow("'blk.0.attn_qkv.weight': a block of 3 along dim 0 does not divide by tp 2");
    expect(() => shardArray("x", whole, { kind: "split", axis: 0, parts: [2, 2] }, 0, 2)).toThrow("'x': blocks 2 + 2 do not add up to dim 0 (6) of (6, 2)");
    const tp3 = { rank: 0, size: 3 } as Communicator; // only its size is read, before any collective
    expect(() => new TpGpt2(GPT2, cpu, { tp: tp3 })).toThrow("the vocabulary of a vocab-parallel embedding (20) must divide by tp (3)");
    const tp4 = { rank: 0, size: 4 } as Communicator;
    expect(() => new TpLlama(LLAMA, cpu, { tp: tp4 })).toThrow("llama's nKvHeads (2) must divide by tp (4)");
    const other = new TpGpt2({ ...GPT2, dim: 8 }, cpu, { tp: one });
    const { model } = await wholeRun(cpu, "gpt2");
    await expect(loadShards(other, model.parameters())).rejects.toThrow(/'token_embd.weight' \(20, 16\) cut for rank 0 of 1 is \(20, 16\), the model's slice is \(20, 8\)/);
  });
});

describe("over a world of one", () => {
  it("vocab-parallel cross-entropy equals crossEntropy, value and gradient, an out-of-range target contributing 0", async () => {
    const logits = tensor(Float32Array.from({ length: 15 }, (_, i) => Math.sin(i * 1.7) * 3), { backend: cpu, shape: [3, 5] });
    const targets = tensor(Int32Array.of(4, 0, 7), { backend: cpu, dtype: "i32", shape: [3] });
    const [a, b] = [logits.mul(1), logits.mul(1)];
    a.requiresGrad = b.requiresGrad = true;
    const ref = crossEntropy(a, targets);
    const got = vocabParallelCrossEntropy(b, targets, one);
    expect(Math.abs((await got.item()) - (await ref.item()))).toBeLessThan(1e-6);
    const [ga] = gradients([ref], [a], [ref.full([], 1)]);
    const [gb] = gradients([got], [b], [got.full([], 1)]);
    expect(maxDiff(await vals(gb!), await vals(ga!))).toBeLessThan(1e-6);
    // The third row's target (7) is outside the vocabulary of 5: its gradient row is 0.
    expect((await vals(gb!)).slice(10)).toEqual([0, 0, 0, 0, 0]);
  });

  for (const arch of ["gpt2", "llama"] as const) {
    it(`the tensor-parallel ${arch} gives the single-process model's logits and loss`, async () => {
      const { model, global } = await wholeRun(cpu, arch);
      const tp = arch === "gpt2" ? new TpGpt2(GPT2, cpu, { tp: one }) : new TpLlama(LLAMA, cpu, { tp: one });
      await loadShards(tp, model.parameters());
      const { inputs, targets } = await global.batch(0, 0);
      const ids = tensor(inputs, { backend: cpu, dtype: "i32", shape: [4, 8] });
      const ys = tensor(targets, { backend: cpu, dtype: "i32", shape: [4, 8] });
      expect(maxDiff(await vals(tp.forward(ids)), await vals(model.forward(ids)))).toBeLessThan(1e-5);
      const refLoss = await crossEntropy(model.forward(ids).reshape([32, 20]), ys.flatten()).item();
      expect(Math.abs((await tp.loss(ids, ys).item()) - refLoss)).toBeLessThan(1e-5);
    });
  }

  it("a step message with a value f32 cannot hold exactly is refused", async () => {
    const big = Int32Array.of(2 ** 24 + 1);
    const batch = { numTokens: 1, tokenBucket: 1, seqBucket: 1, ids: big, positions: Int32Array.of(0), slots: Int32Array.of(0), tokenSeq: Int32Array.of(0), blockTables: Int32Array.of(0), sampleRows: Int32Array.of(0), sampled: [] };
    await expect(sendBatch(one, batch, { maxBlocksPerSeq: 1, numBlocks: 1 })).rejects.toThrow("16777217 in a step message is too large to travel exactly as f32");
  });
});
