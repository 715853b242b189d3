// webgpu_paged.test.ts: the WGSL routines over a paged KV cache (shaders/kv_write.wgsl,
// shaders/paged_attention.wgsl) beyond the conformance cases: that the routines really run, many blocks,
// headDim 64/100/160 and odd, grouped heads that do not fill a workgroup, decode-only batches, rows of odd
// length in packed dtypes, the in-place write seen by the cache itself and by attention in the same graph,
// what a GPU does where the cpu routine throws, and the specs it refuses. Skips without an adapter.

import { afterAll, describe, expect, it } from "vitest";
import type { BackendCaps } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { roundTo } from "../../src/core/dtype.js";
import type { KvWriteSpec, PagedAttentionSpec } from "../../src/core/routines.js";
import { schedule } from "../../src/core/schedule.js";
import { buildWebgpuRoutine, supportsWebgpuRoutine } from "../../src/backends/webgpu/routines.js";
import type { Backend, Tensor } from "../../src/index.js";
import { tensor } from "../../src/index.js";
import { kvWrite, pagedAttention } from "../../src/tensor/paged.js";
import { expectClose, rng, tolerance, values } from "../conformance/harness.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";
import { cpu, tryWebgpu } from "./webgpu_compare.js";

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());

const routinesIn = (t: Tensor): string[] => schedule([t.node]).flatMap((it) => (it.kind === "routine" ? [it.name] : []));
const i32 = (backend: Backend, data: readonly number[], shape = [data.length]) => tensor([...data], { backend, dtype: "i32", shape });

/** 0..n-1 in a seeded random order (Fisher-Yates). */
function shuffled(n: number, seed: number): number[] {
  const r = rng(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A paged batch: the caches' blocks handed out shuffled, each sequence's tokens at given positions. */
interface Batch {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly tables: readonly (readonly number[])[]; // (numSeqs, maxBlocksPerSeq)
  readonly seq: readonly number[];
  readonly pos: readonly number[];
}

/** `contexts[s]` keys for sequence s in shuffled blocks; the batch's tokens are `tokens` as [seq, pos]. */
function batch(heads: number, kvHeads: number, headDim: number, blockSize: number, contexts: readonly number[],
  tokens: readonly (readonly [number, number])[], seed = 1): Batch {
  const need = contexts.map((c) => Math.ceil(c / blockSize));
  const maxBlocks = Math.max(...need);
  const numBlocks = need.reduce((a, b) => a + b, 0) + 2; // two blocks nobody owns
  const free = shuffled(numBlocks, seed);
  const tables = need.map((n) => Array.from({ length: maxBlocks }, (_, i) => (i < n ? free.pop()! : -1)));
  return { heads, kvHeads, headDim, blockSize, numBlocks, tables, seq: tokens.map((t) => t[0]), pos: tokens.map((t) => t[1]) };
}

/** Runs the batch on `backend` in `dtype` from host values (rounded to dtype by `tensor`). */
function attend(backend: Backend, b: Batch, dtype: DType, seed = 3): Tensor {
  const t = b.seq.length;
  const rows = b.numBlocks * b.blockSize;
  const q = tensor(values(t * b.heads * b.headDim, dtype, seed), { backend, dtype, shape: [t, b.heads, b.headDim] });
  const cacheShape = [rows, b.kvHeads, b.headDim];
  const k = tensor(values(rows * b.kvHeads * b.headDim, dtype, seed + 1), { backend, dtype, shape: cacheShape });
  const v = tensor(values(rows * b.kvHeads * b.headDim, dtype, seed + 2), { backend, dtype, shape: cacheShape });
  return pagedAttention({
    q, kCache: k, vCache: v, blockSize: b.blockSize, blockTables: i32(backend, b.tables.flat(), [b.tables.length, b.tables[0]!.length]),
    tokenSeq: i32(backend, b.seq), tokenPos: i32(backend, b.pos),
  });
}

/** The webgpu routine against the cpu routine (doubles) on the same dtype-rounded inputs. */
async function expectLikeCpu(b: Batch, dtype: DType, what: string): Promise<number[]> {
  const out = attend(gpu!, b, dtype);
  expect(routinesIn(out), what).toEqual(["paged_attention"]);
  const got = Array.from(await out.data());
  const want = Array.from(await attend(cpu, b, dtype).data());
  expectClose(got, want, tolerance(dtype, 3), `${what} (${dtype})`);
  return got;
}

/** What kv_write leaves in a cache: rows at in-range slots, the rest untouched. */
function written(cache: readonly number[], rowSize: number, slots: readonly number[], vals: readonly number[]): number[] {
  const out = [...cache];
  slots.forEach((s, i) => {
    if (s >= 0 && s * rowSize < cache.length) out.splice(s * rowSize, rowSize, ...vals.slice(i * rowSize, (i + 1) * rowSize));
  });
  return out;
}

describe.skipIf(!gpu)(`webgpu paged KV cache routines${skipLabel(missing)}`, () => {
  const g = gpu!;

  it("the conformance cases run as routines, not as their references", () => {
    for (const dtype of ["f32", "f16", "bf16"] as DType[]) {
      const cache = tensor(values(60, dtype), { backend: g, dtype, shape: [10, 6] });
      const out = kvWrite(cache, i32(g, [7, -1, 0, 3]), tensor(values(24, dtype, 2), { backend: g, dtype, shape: [4, 6] }));
      expect(routinesIn(out)).toEqual(["kv_write"]);
      const b = batch(4, 2, 8, 4, [7, 2, 9], [[0, 5], [0, 6], [1, 1], [2, 6], [2, 7], [2, 8], [0, -1]]);
      expect(routinesIn(attend(g, b, dtype))).toEqual(["paged_attention"]);
    }
  });

  for (const [dtype, rowSize] of [["f16", 5], ["bf16", 7], ["f16", 6], ["f32", 5]] as [DType, number][]) {
    it(`kv_write ${dtype} rows of ${rowSize}: neighbouring slots share words, bad slots skip, in place`, async () => {
      const numSlots = 12;
      const slots = [3, 4, -1, 11, 0, 12, 5, 7, 1000];
      const cacheData = values(numSlots * rowSize, dtype, 5).map((x) => roundTo(x, dtype));
      const valsData = values(slots.length * rowSize, dtype, 6).map((x) => roundTo(x, dtype));
      const cache = tensor(cacheData, { backend: g, dtype, shape: [numSlots, rowSize] });
      const out = kvWrite(cache, i32(g, slots), tensor(valsData, { backend: g, dtype, shape: [slots.length, rowSize] }));
      expect(routinesIn(out)).toEqual(["kv_write"]);
      const want = written(cacheData, rowSize, slots, valsData);
      expect(Array.from(await out.data())).toEqual(want);
      expect(Array.from(await cache.data())).toEqual(want);
    });
  }

  it("kv_write many rows of odd length (f16, bf16) into a shuffled set of slots, twice", async () => {
    for (const dtype of ["f16", "bf16"] as DType[]) {
      const numSlots = 300, rowSize = 33, rows = 200;
      const perm = shuffled(numSlots, 9);
      let want = values(numSlots * rowSize, dtype, 7).map((x) => roundTo(x, dtype));
      const cache = tensor(want, { backend: g, dtype, shape: [numSlots, rowSize] });
      for (const [k, slots] of [perm.slice(0, rows), perm.slice(100, 100 + rows)].entries()) {
        const valsData = values(rows * rowSize, dtype, 20 + k).map((x) => roundTo(x, dtype));
        want = written(want, rowSize, slots, valsData);
        const out = kvWrite(cache, i32(g, slots), tensor(valsData, { backend: g, dtype, shape: [rows, rowSize] }));
        await out.realize();
      }
      expect(Array.from(await cache.data()), dtype).toEqual(want);
    }
  });

  it("attention in the same graph reads the rows kv_write just wrote (a decode step)", async () => {
    const run = async (backend: Backend) => {
      // One sequence of 9 keys in blocks [2, 0, 3] of 4; this step writes key 9 (slot 3 * 4 + 1) and attends from it.
      const [heads, kvHeads, d] = [4, 2, 16];
      const shape = [16, kvHeads, d];
      // kv_write takes (slots, row) caches; attention reads them as (slots, kvHeads, headDim).
      const k = tensor(values(16 * kvHeads * d, "f32", 1), { backend, shape: [16, kvHeads * d] });
      const v = tensor(values(16 * kvHeads * d, "f32", 2), { backend, shape: [16, kvHeads * d] });
      const slot = i32(backend, [13]);
      const newK = tensor(values(kvHeads * d, "f32", 3), { backend, shape: [1, kvHeads * d] });
      const newV = tensor(values(kvHeads * d, "f32", 4), { backend, shape: [1, kvHeads * d] });
      const k2 = kvWrite(k, slot, newK).reshape(shape);
      const v2 = kvWrite(v, slot, newV).reshape(shape);
      const out = pagedAttention({
        q: tensor(values(heads * d, "f32", 5), { backend, shape: [1, heads, d] }), kCache: k2, vCache: v2, blockSize: 4,
        blockTables: i32(backend, [2, 0, 3], [1, 3]), tokenSeq: i32(backend, [0]), tokenPos: i32(backend, [9]),
      });
      if (backend === g) expect(routinesIn(out).sort()).toEqual(["kv_write", "kv_write", "paged_attention"]);
      return { out: Array.from(await out.data()), k: Array.from(await k.data()), newK: Array.from(await newK.data()) };
    };
    const [got, want] = [await run(g), await run(cpu)];
    expectClose(got.out, want.out, tolerance("f32", 3), "attention after kv_write");
    expect(got.k.slice(13 * 32, 14 * 32)).toEqual(got.newK); // the cache itself holds the new row
  });

  it("paged_attention over many shuffled blocks: chunked prefill, decode and padding in one batch, headDim 64", async () => {
    const b = batch(4, 2, 64, 4, [37, 61, 12], [[0, 32], [0, 33], [0, 34], [0, 35], [0, 36], [1, 60], [2, 9], [2, 10], [2, 11], [1, -1], [0, -1]]);
    for (const dtype of ["f32", "bf16"] as DType[]) await expectLikeCpu(b, dtype, "many blocks, d 64");
  });

  it("paged_attention headDim 100 without grouping, and odd headDim 7 with groups of 3 heads", async () => {
    const b100 = batch(2, 2, 100, 8, [20, 45], [[0, 19], [1, 0], [1, 44], [0, 3]], 2);
    await expectLikeCpu(b100, "f16", "d 100");
    const b7 = batch(6, 2, 7, 4, [10, 3], [[0, 9], [1, 2], [0, 0], [1, -1], [0, 5]], 3);
    // NOTE: packed outputs of odd rows store their row-straddling words by halves.
    for (const dtype of ["f16", "bf16"] as DType[]) await expectLikeCpu(b7, dtype, "d 7, 3 heads per kv head");
  });

  it("paged_attention with more query heads per kv head than a workgroup holds (8 heads, headDim 160)", async () => {
    await expectLikeCpu(batch(8, 1, 160, 4, [11, 6], [[0, 10], [1, 5], [0, 4]], 4), "f32", "8 heads per kv head, d 160");
  });

  it("paged_attention decode-only batch: 32 sequences, one token each", async () => {
    const contexts = Array.from({ length: 32 }, (_, s) => 1 + ((s * 7) % 41));
    const b = batch(4, 1, 32, 8, contexts, contexts.map((c, s) => [s, c - 1] as const), 5);
    await expectLikeCpu(b, "f16", "decode of 32");
  });

  it("paged_attention where the cpu routine throws: NaN for tokens outside the tables or keys outside the cache", async () => {
    const b = batch(2, 1, 8, 4, [6, 5], [[0, 5], [3, 1], [1, 8], [1, 4], [1, -1], [-1, 2]]);
    // Sequence 1 has 2 blocks; point its second at a block the cache does not have.
    const bad = { ...b, tables: [b.tables[0]!, [b.tables[1]![0]!, b.numBlocks]] };
    const got = Array.from(await attend(g, bad, "f32").data());
    const per = 2 * 8;
    const token = (t: number) => got.slice(t * per, (t + 1) * per);
    expect(token(1).every(Number.isNaN), "sequence 3 of 2").toBe(true);
    expect(token(2).every(Number.isNaN), "position 8 of 8").toBe(true);
    expect(token(3).every(Number.isNaN), "key 4 in a block outside the cache").toBe(true);
    expect(token(4)).toEqual(new Array(per).fill(0));
    expect(token(5).every(Number.isNaN), "sequence -1").toBe(true);
    // Token 0 reads only good blocks: like the cpu routine on a batch of just that token.
    const want = Array.from(await attend(cpu, { ...bad, seq: [0, 0, 0, 0, 0, 0], pos: [5, -1, -1, -1, -1, -1] }, "f32").data());
    expectClose(token(0), want.slice(0, per), tolerance("f32", 3), "token 0 next to bad tokens");
  });

  // NOTE: 65535 workgroups take minutes on SwiftShader (about 130 s here); a hardware adapter runs it.
  const software = g?.info.software ? missingReason("gpu", `the WebGPU adapter, ${g.info.device}, is software: 65540 tokens take minutes`) : undefined;
  it.skipIf(!!software)(`paged_attention over more than 65535 tokens folds them into the token loop${skipLabel(software)}`, async () => {
    const t = 65540;
    const run = (backend: Backend) => pagedAttention({
      q: tensor(values(t * 2, "f32", 1), { backend, shape: [t, 1, 2] }),
      kCache: tensor(values(8, "f32", 2), { backend, shape: [4, 1, 2] }), vCache: tensor(values(8, "f32", 3), { backend, shape: [4, 1, 2] }),
      blockSize: 2, blockTables: i32(backend, [1, 0], [1, 2]),
      tokenSeq: i32(backend, new Array(t).fill(0)), tokenPos: i32(backend, Array.from({ length: t }, (_, i) => (i % 5) - 1)),
    }).data();
    expectClose(Array.from(await run(g)), Array.from(await run(cpu)), tolerance("f32", 3), "65540 tokens");
  });

  it("the launch refuses a kv_write whose output is not the cache's buffer", async () => {
    const spec: KvWriteSpec = { numSlots: 4, rowSize: 2, rows: 1, dtype: "f32" };
    const exe = await g.routine("kv_write", spec);
    const [out, cache, slots, vals] = [32, 32, 4, 8].map((n) => g.alloc(n));
    expect(() => g.launch(exe, [out!, cache!, slots!, vals!])).toThrow(/kv_write.*slot 1 in place/);
    for (const b of [out, cache, slots, vals]) g.free(b!);
  });
});

describe("webgpu paged routines: which specs build, and their dispatch", () => {
  const caps: BackendCaps = { dtypes: ["f32", "f16", "bf16", "i32"], maxBufferBytes: 2 ** 31, f16Math: false, subgroups: false };
  const paged: PagedAttentionSpec = {
    numTokens: 5, heads: 8, kvHeads: 2, headDim: 64, blockSize: 16, numBlocks: 10, numSeqs: 3, maxBlocksPerSeq: 4,
    scale: 0.125, dtype: "f16", out: "f16",
  };

  it("refuses what it cannot do, with the reason", () => {
    const refused: [Partial<PagedAttentionSpec>, RegExp][] = [
      [{ headDim: 257 }, /headDim 257 is over 256/], [{ kvHeads: 3 }, /multiple of kvHeads/], [{ dtype: "i32" }, /dtype i32/],
      [{ numSeqs: 0 }, /integers >= 1/], [{ scale: Infinity }, /not finite/],
    ];
    for (const [change, why] of refused) {
      expect(supportsWebgpuRoutine("paged_attention", { ...paged, ...change }, caps)).toBe(false);
      expect(() => buildWebgpuRoutine("paged_attention", { ...paged, ...change }, caps)).toThrow(why);
    }
    expect(() => buildWebgpuRoutine("kv_write", { numSlots: 4, rowSize: 2, rows: 0, dtype: "f32" }, caps)).toThrow(/integers >= 1/);
    expect(() => buildWebgpuRoutine("kv_write", { numSlots: 4, rowSize: 2, rows: 1, dtype: "u8" }, caps)).toThrow(/dtype u8/);
  });

  it("folds big launches into the dispatch limits", () => {
    // 2^18 rows of 64 f32 words: 2^16 workgroups of 256, over 65535 along x.
    const kv = buildWebgpuRoutine("kv_write", { numSlots: 2 ** 18, rowSize: 64, rows: 2 ** 18, dtype: "f32" }, caps);
    expect(kv.dispatch).toEqual([65535, 2, 1]);
    expect(kv.inPlaceSlot).toBe(1);
    expect(buildWebgpuRoutine("paged_attention", { ...paged, numTokens: 100_000 }, caps).dispatch).toEqual([2, 65535, 1]);
    // 8 query heads per kv head, 4 to a workgroup at headDim 256: two workgroups per kv head.
    expect(buildWebgpuRoutine("paged_attention", { ...paged, heads: 16, headDim: 256 }, caps).dispatch).toEqual([4, 5, 1]);
  });
});
