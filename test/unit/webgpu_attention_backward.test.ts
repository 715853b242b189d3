// webgpu_attention_backward.test.ts: shaders/attention_backward.wgsl beyond the conformance cases: more
// query rows per kv head than one chunk of row statistics (dK and dV then accumulate across chunks in the
// f32 output), batches looped by one workgroup, and which specs it refuses. Skips without an adapter.

import { afterAll, describe, expect, it } from "vitest";
import type { BackendCaps } from "../../src/core/backend.js";
import type { AttentionSpec } from "../../src/core/routines.js";
import { schedule } from "../../src/core/schedule.js";
import { buildWebgpuRoutine, supportsWebgpuRoutine } from "../../src/backends/webgpu/routines.js";
import type { Backend } from "../../src/index.js";
import { attentionBackward, attentionBackwardComposed, tensor, withRoutines } from "../../src/index.js";
import { expectClose, tolerance, values } from "../conformance/harness.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { cpu, tryWebgpu } from "./webgpu_compare.js";

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());

describe.skipIf(!gpu)(`webgpu attention_backward routine${skipLabel(missing)}`, () => {
  it("more rows per kv head than one chunk (2 heads x 530 queries > 1024): dK, dV accumulate across chunks", async () => {
    const [qs, ks] = [[1, 2, 530, 4], [1, 1, 530, 4]];
    const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const data = [values(n(qs), "f32", 1), values(n(ks), "f32", 2), values(n(ks), "f32", 3), values(n(qs), "f32", 4), values(n(qs), "f32", 5)]
      .map((xs) => xs.map(Math.fround));
    const shapes = [qs, ks, ks, qs, qs];
    const on = (backend: Backend, dtype: "f32" | "f64") => data.map((d, i) => tensor(d, { backend, dtype, shape: shapes[i] }));
    const [q, k, v, o, dO] = on(gpu!, "f32");
    const grads = attentionBackward(q!, k!, v!, o!, dO!, { causal: true });
    expect(schedule(grads.map((g) => g.node)).some((s) => s.kind === "routine" && s.name === "attention_backward")).toBe(true);
    const got = (await Promise.all(grads.map((g) => g.data()))).flatMap((x) => Array.from(x));
    const [q64, k64, v64, o64, dO64] = on(cpu, "f64");
    const ref = withRoutines(false, () => attentionBackwardComposed(q64!, k64!, v64!, o64!, dO64!, { causal: true }));
    const want = (await Promise.all(ref.map((g) => g.data()))).flatMap((x) => Array.from(x));
    expectClose(got, want, tolerance("f32", 40), "attention_backward over two row chunks");
  }, 240_000);
});

describe("webgpu attention_backward: which specs build, and their dispatch", () => {
  const caps: BackendCaps = { dtypes: ["f32", "f16", "bf16"], maxBufferBytes: 2 ** 30, f16Math: false, subgroups: false };
  const spec = (p: Partial<AttentionSpec>): AttentionSpec => ({
    batch: 3, heads: 4, kvHeads: 2, tq: 16, tk: 16, headDim: 8, causal: true, scale: 0.35, dtype: "f32", out: "f32", ...p,
  });
  it("one workgroup per (kv head, batch); f16 output only while the rows fit one chunk", () => {
    expect(buildWebgpuRoutine("attention_backward", spec({}), caps).dispatch).toEqual([2, 3, 1]);
    expect(supportsWebgpuRoutine("attention_backward", spec({ out: "f16", dtype: "f16", tq: 512 }), caps)).toBe(true);
    expect(supportsWebgpuRoutine("attention_backward", spec({ out: "f16", dtype: "f16", tq: 513 }), caps)).toBe(false);
    expect(supportsWebgpuRoutine("attention_backward", spec({ tq: 513 }), caps)).toBe(true);
    expect(() => buildWebgpuRoutine("attention_backward", spec({ out: "bf16", dtype: "bf16", tq: 600 }), caps)).toThrow(/attention_backward.*must then be f32/);
    expect(() => buildWebgpuRoutine("attention_backward", spec({ headDim: 300 }), caps)).toThrow(/headDim 300 is over 256/);
  });
});
