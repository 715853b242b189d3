// attention_backward.test.ts: the attention_backward routine (dQ, dK, dV recomputed row by row) on cpu,
// in its two precisions (wasm SIMD f32 for f32/f16/bf16 data, JS doubles for f64), against a direct f64 loop
// written here and against the composed backward (matmul + softmax over (B, H, Tq, Tk)) from primitives;
// that autograd through attention() takes the routine; and the errors for bad operands.
// (Every backend's routine against the f64 reference is in test/conformance/routines.test.ts.)

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { attention, attentionBackward, attentionBackwardComposed, getBackend, tensor, withRoutines } from "../../src/index.js";
import { schedule } from "../../src/core/schedule.js";
import type { AttentionSpec } from "../../src/core/routines.js";
import { buildCpuRoutine, supportsCpuRoutine } from "../../src/backends/cpu/routines.js";
import { expectClose, tolerance, values } from "../conformance/harness.js";

const cpu = await getBackend("cpu");

interface Case {
  readonly name: string;
  readonly q: [number, number, number, number]; // (B, H, Tq, D)
  readonly kv: [number, number, number, number]; // (B, KVH, Tk, D)
  readonly causal: boolean;
}

// NOTE: odd head dims (5, 7) exercise the rows' zero padding to 4; Tk of 19 and 70 are not multiples of the
// kernel's 4-key groups; Tq < Tk shifts the causal mask; GQA sums dK, dV over 2 and 3 query heads.
const CASES: Case[] = [
  { name: "causal, tq = tk, grouped-query 2:1", q: [2, 4, 9, 8], kv: [2, 2, 9, 8], causal: true },
  { name: "causal, tq < tk, odd sizes, grouped-query 3:1", q: [1, 3, 13, 5], kv: [1, 1, 19, 5], causal: true },
  { name: "non-causal, tq > tk, odd head dim", q: [2, 2, 11, 7], kv: [2, 2, 6, 7], causal: false },
  { name: "causal, long rows (tk 70), head dim 32", q: [1, 2, 70, 32], kv: [1, 1, 70, 32], causal: true },
  { name: "causal decode row (tq 1)", q: [1, 2, 1, 16], kv: [1, 2, 23, 16], causal: true },
];

/** The gradients by a direct f64 loop over (b, h, i, j): the dense softmax and its gradient, nothing shared with the routine. */
function directBackward(c: Case, q: number[], k: number[], v: number[], dO: number[]): { o: number[]; grads: number[] } {
  const [B, H, TQ, D] = c.q;
  const [, KVH, TK] = c.kv;
  const scale = 1 / Math.sqrt(D);
  const o = new Array<number>(q.length).fill(0);
  const dq = new Array<number>(q.length).fill(0);
  const dk = new Array<number>(k.length).fill(0);
  const dv = new Array<number>(v.length).fill(0);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / KVH));
    const kv = (j: number) => ((b * KVH + g) * TK + j) * D;
    for (let i = 0; i < TQ; i++) {
      const qi = ((b * H + h) * TQ + i) * D;
      const seen = c.causal ? Math.min(TK, i + TK - TQ + 1) : TK;
      const s = Array.from({ length: seen }, (_, j) => {
        let x = 0;
        for (let e = 0; e < D; e++) x += q[qi + e]! * k[kv(j) + e]!;
        return x * scale;
      });
      const m = Math.max(...s);
      const ex = s.map((x) => Math.exp(x - m));
      const l = ex.reduce((a, x) => a + x, 0);
      const p = ex.map((x) => x / l);
      for (let j = 0; j < seen; j++) for (let e = 0; e < D; e++) o[qi + e]! += p[j]! * v[kv(j) + e]!;
      // dP_j = dO_i . v_j; dS_j = P_j (dP_j - sum_l P_l dP_l) scale (the softmax Jacobian, written directly).
      const dp = Array.from({ length: seen }, (_, j) => {
        let x = 0;
        for (let e = 0; e < D; e++) x += dO[qi + e]! * v[kv(j) + e]!;
        return x;
      });
      const pdp = p.reduce((a, x, j) => a + x * dp[j]!, 0);
      for (let j = 0; j < seen; j++) {
        const ds = p[j]! * (dp[j]! - pdp) * scale;
        for (let e = 0; e < D; e++) {
          dq[qi + e]! += ds * k[kv(j) + e]!;
          dk[kv(j) + e]! += ds * q[qi + e]!;
          dv[kv(j) + e]! += p[j]! * dO[qi + e]!;
        }
      }
    }
  }
  return { o, grads: [...dq, ...dk, ...dv] };
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function inputs(c: Case): { q: number[]; k: number[]; v: number[]; dO: number[] } {
  const f32 = (xs: number[]) => xs.map(Math.fround);
  return { q: f32(values(numel(c.q), "f32", 11)), k: f32(values(numel(c.kv), "f32", 12)), v: f32(values(numel(c.kv), "f32", 13)), dO: f32(values(numel(c.q), "f32", 14)) };
}

const flat = (ts: Tensor[]) => Promise.all(ts.map(async (t) => Array.from(await t.data()))).then((xs) => xs.flat());

describe("cpu attention_backward routine", () => {
  for (const c of CASES) {
    for (const dtype of ["f32", "f64"] as const) {
      it(`${c.name} [${dtype}] matches a direct f64 loop`, async () => {
        const x = inputs(c);
        const want = directBackward(c, x.q, x.k, x.v, x.dO);
        const t = (data: number[], shape: number[]) => tensor(data, { backend: cpu, dtype, shape });
        const [q, k, v, dO] = [t(x.q, c.q), t(x.k, c.kv), t(x.v, c.kv), t(x.dO, c.q)];
        const o = t(want.o, c.q); // the exact forward output, so only the backward's error is measured
        const got = await flat(attentionBackward(q, k, v, o, dO, { causal: c.causal }));
        // f32 rows: sums of up to tk * group products of values near 1, rounded in f32.
        const tol = dtype === "f64" ? { rtol: 1e-12, atol: 1e-12 } : tolerance("f32", 2 * Math.sqrt(c.kv[2] * (c.q[1] / c.kv[1])));
        expectClose(got, want.grads, tol, `${c.name} ${dtype}`);
      });
    }
    it(`${c.name}: routine backward (f32) vs composed backward (f64, primitives)`, async () => {
      const x = inputs(c);
      const mk = (dtype: "f32" | "f64") => [tensor(x.q, { backend: cpu, dtype, shape: c.q }), tensor(x.k, { backend: cpu, dtype, shape: c.kv }),
        tensor(x.v, { backend: cpu, dtype, shape: c.kv }), tensor(x.dO, { backend: cpu, dtype, shape: c.q })] as const;
      const [q, k, v, dO] = mk("f32");
      const got = await flat(attentionBackward(q, k, v, attention(q, k, v, { causal: c.causal }), dO, { causal: c.causal }));
      const [q64, k64, v64, dO64] = mk("f64");
      const want = await flat(withRoutines(false, () => {
        const o = attention(q64, k64, v64, { causal: c.causal });
        return attentionBackwardComposed(q64, k64, v64, o, dO64, { causal: c.causal });
      }));
      expectClose(got, want, tolerance("f32", 2 * Math.sqrt(c.kv[2] * (c.q[1] / c.kv[1]))), c.name);
    });
  }

  it("f16 and bf16 data: computed in f32, rounded once on the way out", async () => {
    const c = CASES[1]!;
    const x = inputs(c);
    for (const dtype of ["f16", "bf16"] as const) {
      const t = (data: number[], shape: number[]) => tensor(data, { backend: cpu, dtype, shape });
      const [q, k, v, dO] = [t(x.q, c.q), t(x.k, c.kv), t(x.v, c.kv), t(x.dO, c.q)];
      const o = attention(q, k, v, { causal: true });
      const got = await flat(attentionBackward(q, k, v, o, dO, { causal: true }));
      const up = async (a: Tensor) => tensor(Array.from(await a.data()), { backend: cpu, dtype: "f64", shape: a.shape });
      const [q64, k64, v64, o64, dO64] = await Promise.all([q, k, v, o, dO].map(up));
      const want = await flat(withRoutines(false, () => attentionBackwardComposed(q64!, k64!, v64!, o64!, dO64!, { causal: true })));
      expectClose(got, want, tolerance(dtype, 4), `attention_backward ${dtype}`);
    }
  });

  it("autograd through attention() launches the routine and agrees with the composed backward", async () => {
    const c = CASES[1]!;
    const x = inputs(c);
    const run = async (routines: boolean) => {
      const q = tensor(x.q, { backend: cpu, dtype: "f64", shape: c.q, requiresGrad: true });
      const k = tensor(x.k, { backend: cpu, dtype: "f64", shape: c.kv, requiresGrad: true });
      const v = tensor(x.v, { backend: cpu, dtype: "f64", shape: c.kv, requiresGrad: true });
      const w = tensor(x.dO, { backend: cpu, dtype: "f64", shape: c.q });
      withRoutines(routines, () => attention(q, k, v, { causal: true }).mul(w).sum()).backward();
      const names = schedule([q.grad!.node, k.grad!.node, v.grad!.node]).flatMap((s) => (s.kind === "routine" ? [s.name] : []));
      return { names, grads: await flat([q.grad!, k.grad!, v.grad!]) };
    };
    const [withRoutine, composed] = [await run(true), await run(false)];
    expect(withRoutine.names).toContain("attention_backward");
    expect(composed.names).not.toContain("attention_backward");
    expectClose(withRoutine.grads, composed.grads, { rtol: 1e-10, atol: 1e-12 }, "autograd attention");
  });

  it("bad operands are refused with the shape or spec named", () => {
    const q = tensor(values(2 * 3 * 4, "f32"), { backend: cpu, shape: [1, 2, 3, 4] });
    const k = tensor(values(3 * 4, "f32"), { backend: cpu, shape: [1, 1, 3, 4] });
    expect(() => attentionBackward(q, k, k, q.reshape([1, 2, 4, 3]), q)).toThrow(/attentionBackward: o must be \(1, 2, 3, 4\) f32/);
    expect(() => attentionBackward(q, k, k, q, q.cast("f64"))).toThrow(/dO must be .* f32 like q, got .* f64/);
    const bad: AttentionSpec = { batch: 1, heads: 3, kvHeads: 2, tq: 1, tk: 1, headDim: 4, causal: false, scale: 1, dtype: "f32", out: "f32" };
    expect(supportsCpuRoutine("attention_backward", bad)).toBe(false);
    expect(() => buildCpuRoutine("attention_backward", bad)).toThrow(/attention_backward.*kvHeads/);
  });
});
