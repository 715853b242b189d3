// Conformance: the paged-KV-cache ops (kv_write in place, paged_attention through block tables) on
// every backend against their primitive references in f64, with ragged sequences, shared and
// scattered blocks, grouped-query heads and padding tokens.

import { describe, expect, it } from "vitest";
import type { DType } from "../../src/index.js";
import { attention, getBackend, tensor, withRoutines } from "../../src/index.js";
import { kvWrite, pagedAttention } from "../../src/tensor/paged.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, conform, expectClose, tolerance, values } from "./harness.js";

const backends = await backendsUnderTest();

for (const b of backends) {
  describe.skipIf(!b.backend)(`paged KV cache on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const dt of ["f32", "f16", "bf16"] as DType[]) {
      it(`kv_write ${dt}: rows land at their slots in place, negative slots skip`, async () => {
        const backend = b.backend!;
        const cacheData = values(10 * 6, dt, 1);
        const cache = tensor(cacheData, { backend, dtype: dt, shape: [10, 6] });
        const slots = tensor([7, -1, 0, 3], { backend, dtype: "i32" });
        const vals = tensor(values(4 * 6, dt, 2), { backend, dtype: dt, shape: [4, 6] });
        const want = Array.from(await withRoutines(false, () => kvWrite(cache, slots, vals)).data());
        const out = kvWrite(cache, slots, vals);
        const got = Array.from(await out.data());
        expectClose(got, want, tolerance(dt), `kv_write ${dt} on ${b.name}`);
        // In place where the routine ran: the cache itself now holds the rows.
        if (out.node !== cache.node && backend.supportsRoutine("kv_write", { numSlots: 10, rowSize: 6, rows: 4, dtype: dt })) {
          expectClose(Array.from(await cache.data()), want, tolerance(dt), `kv_write ${dt} in place on ${b.name}`);
        }
      });

      it(`paged_attention ${dt}: ragged sequences through block tables, GQA, padding`, async (ctx) => {
        // 3 sequences over 6 blocks of 4: seq 0 has 7 tokens in blocks [5, 1], seq 1 has 2 in [0], seq 2 has 9 in [2, 4, 3].
        // The batch: seq 0's last 2 tokens (chunked prefill), seq 1's 1 token (decode), seq 2's 3 tokens, one padding token.
        const tables = { shape: [3, 3], dtype: "i32" as DType, data: [5, 1, -1, 0, -1, -1, 2, 4, 3] };
        const seq = { shape: [7], dtype: "i32" as DType, data: [0, 0, 1, 2, 2, 2, 0] };
        const pos = { shape: [7], dtype: "i32" as DType, data: [5, 6, 1, 6, 7, 8, -1] };
        await conform(ctx, b, "paged_attention", dt, [
          { shape: [7, 4, 8] }, { shape: [24, 2, 8], seed: 3 }, { shape: [24, 2, 8], seed: 4 }, tables, seq, pos,
        ], (q, k, v, bt, s, p) => pagedAttention({ q, kCache: k, vCache: v, blockTables: bt!, tokenSeq: s!, tokenPos: p!, blockSize: 4 }), 3);
      });
    }

    it("paged_attention equals dense causal attention for one sequence laid out in order", async () => {
      const backend = b.backend!;
      const cpu = await getBackend("cpu");
      const t = 6, h = 2, d = 4;
      const qd = values(t * h * d, "f32", 5), kd = values(8 * h * d, "f32", 6), vd = values(8 * h * d, "f32", 7);
      const q = tensor(qd, { backend, shape: [t, h, d] });
      const k = tensor(kd, { backend, shape: [8, h, d] }), v = tensor(vd, { backend, shape: [8, h, d] });
      const out = pagedAttention({
        q, kCache: k, vCache: v, blockSize: 4, blockTables: tensor([0, 1], { backend, dtype: "i32", shape: [1, 2] }),
        tokenSeq: tensor([0, 0, 0, 0, 0, 0], { backend, dtype: "i32" }), tokenPos: tensor([0, 1, 2, 3, 4, 5], { backend, dtype: "i32" }),
      });
      const dense = attention(
        tensor(qd, { backend: cpu, shape: [t, h, d] }).permute([1, 0, 2]).unsqueeze(0),
        tensor(kd, { backend: cpu, shape: [8, h, d] }).slice(0, 0, t).permute([1, 0, 2]).unsqueeze(0),
        tensor(vd, { backend: cpu, shape: [8, h, d] }).slice(0, 0, t).permute([1, 0, 2]).unsqueeze(0), { causal: true },
      ).squeeze(0).permute([1, 0, 2]);
      expectClose(Array.from(await out.data()), Array.from(await dense.data()), tolerance("f32", 5), "paged vs dense");
    });

    it("kv_write refuses a cache that is not a realized buffer", () => {
      const backend = b.backend!;
      const lazy = tensor([1, 2, 3, 4], { backend, shape: [2, 2] }).mul(2);
      const out = kvWrite(lazy, tensor([0], { backend, dtype: "i32" }), tensor([[5, 6]], { backend }));
      expect(out.node.op).not.toBe("routine"); // falls back to the functional reference
    });
  });
}
