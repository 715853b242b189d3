// cpu_attention_kernel.test.ts: the wasm SIMD attention kernel's own pieces (src/backends/cpu/wasm/
// attention_kernel.ts, exp_f32.ts): that this engine runs it (else the f32 routines would silently take the
// f64 JS path and the routine tests would not exercise it), its vectorised exp against Math.exp over a sweep
// and the special values, and the routines' non-finite and empty-row behaviour, which the dense formula defines.

import { describe, expect, it } from "vitest";
import { attentionKernel, hasAttentionKernel } from "../../src/backends/cpu/wasm/attention_kernel.js";
import { buildAttention } from "../../src/backends/cpu/attention.js";
import { buildAttentionBackward } from "../../src/backends/cpu/attention_backward.js";
import type { AttentionSpec } from "../../src/core/routines.js";

/** The kernel's exp of each value (as f32), through the module's exp function. */
function wasmExp(xs: Float32Array): Float32Array {
  const k = attentionKernel(1);
  const n4 = Math.ceil(xs.length / 4);
  const mem = k.reserve(n4 * 16);
  mem.fill(0, 0, n4 * 4);
  mem.set(xs, 0);
  k.exp(0, n4);
  return mem.slice(0, xs.length);
}

/** |got - want| in units in the last place of want (f32; below 2^-126 the unit is 2^-149). */
function ulps(got: number, want: number): number {
  if (got === want) return 0;
  const unit = Math.abs(want) < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(want))) - 23);
  return Math.abs(got - want) / unit;
}

describe("cpu attention kernel", () => {
  it("runs on this engine (WebAssembly SIMD), so the f32 routines use it", () => {
    expect(hasAttentionKernel()).toBe(true);
  });

  it("exp: within 1 ulp of Math.exp over [-104, 89] (normal and subnormal results)", () => {
    const n = 1 << 20;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -104 + (193 * i) / (n - 1);
    const got = wasmExp(xs);
    let worst = 0;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const e = ulps(got[i]!, Math.fround(Math.exp(xs[i]!)));
      if (e > worst) [worst, at] = [e, xs[i]!];
    }
    expect(worst, `worst ${worst} ulp at x = ${at}`).toBeLessThanOrEqual(1);
  });

  it("exp: special values and the ends of the range", () => {
    const xs = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 88.72, 88.7229, 89, 1e30, -87.33, -103.97, -103.98, -104, -1e30, 1e-30, -1e-30];
    const got = wasmExp(new Float32Array(xs));
    xs.forEach((x, i) => {
      const want = Math.fround(Math.exp(Math.fround(x)));
      if (Number.isNaN(want)) expect(got[i], `exp(${x})`).toBeNaN();
      else expect(ulps(got[i]!, want), `exp(${x}) = ${got[i]}, want ${want}`).toBeLessThanOrEqual(1);
    });
    expect(got[1]).toBe(Infinity);
    expect(got[2]).toBe(0);
    expect(got[3]).toBe(1);
    expect(got[8]).toBe(Infinity); // past the largest finite f32 exp
  });

  const spec = (over: Partial<AttentionSpec>): AttentionSpec => ({
    batch: 1, heads: 1, kvHeads: 1, tq: 3, tk: 5, headDim: 4, causal: true, scale: 0.5, dtype: "f32", out: "f32", ...over,
  });
  const ramp = (n: number, f = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + f));

  // NOTE: head dim 66 pads to 68 (dv 17: more row registers than x64 has, so V8 spills; still exact), and
  // 150 query rows span three backward blocks of 64 with tq < tk shifting the causal mask.
  for (const [name, over] of [
    ["causal, tq < tk, grouped-query 2:1, head dim 66, three backward blocks", { batch: 2, heads: 4, kvHeads: 2, tq: 150, tk: 171, headDim: 66 }],
    ["non-causal, tq > tk, head dim 8", { batch: 1, heads: 2, kvHeads: 2, tq: 70, tk: 9, headDim: 8, causal: false }],
  ] as const) {
    it(`f32 kernel against the f64 JS path: ${name}`, () => {
      const s = spec({ ...over, scale: 1 / Math.sqrt(over.headDim) });
      const nq = s.batch * s.heads * s.tq * s.headDim;
      const nk = s.batch * s.kvHeads * s.tk * s.headDim;
      const [q, k, v, dO] = [ramp(nq, 1), ramp(nk, 2), ramp(nk, 3), ramp(nq, 4)].map((a) => a.map((x, i) => x * (1 + (i % 7) / 3)));
      const run = (dtype: "f32" | "f64") => {
        const T = dtype === "f32" ? Float32Array : Float64Array;
        const sd = { ...s, dtype, out: dtype };
        const o = new T(nq);
        buildAttention(sd).run([o, T.from(q!), T.from(k!), T.from(v!)]);
        const grads = new T(nq + 2 * nk);
        buildAttentionBackward(sd).run([grads, T.from(q!), T.from(k!), T.from(v!), T.from(o), T.from(dO!)]);
        return [o, grads] as const;
      };
      const [[o32, g32], [o64, g64]] = [run("f32"), run("f64")];
      const worst = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        let m = 0;
        for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
        return m;
      };
      expect(worst(o32, o64)).toBeLessThan(1e-5);
      expect(worst(g32, g64)).toBeLessThan(1e-4);
    });
  }

  it("forward: a NaN or +Inf score makes its row NaN and leaves the others finite, like the dense formula", () => {
    const s = spec({ tq: 3, tk: 3 });
    const [q, k, v] = [ramp(12, 1), ramp(12, 2), ramp(12, 3)];
    k[4 + 1] = NaN; // key 1: seen by rows 1 and 2 (causal)
    q[0] = Infinity; // row 0 sees key 0 only: its score is +-Inf, exp(Inf - Inf) = NaN
    const o = new Float32Array(12);
    buildAttention(s).run([o, q, k, v]);
    for (let i = 0; i < 3; i++) for (let c = 0; c < 4; c++) expect(o[i * 4 + c], `row ${i} col ${c}`).toBeNaN();
    const k2 = ramp(12, 2);
    k2[8] = NaN; // key 2: seen by row 2 only
    const o2 = new Float32Array(12);
    buildAttention(s).run([o2, ramp(12, 1), k2, v]);
    expect(Array.from(o2.slice(0, 8)).every(Number.isFinite)).toBe(true);
    for (let c = 0; c < 4; c++) expect(o2[8 + c]).toBeNaN();
  });

  it("causal with tq > tk: rows that see no key are NaN forward and get zero dQ backward", () => {
    const s = spec({ tq: 6, tk: 2 });
    const [q, k, v, dO] = [ramp(24, 1), ramp(8, 2), ramp(8, 3), ramp(24, 4)];
    const o = new Float32Array(24);
    buildAttention(s).run([o, q, k, v]);
    // row i sees keys j <= i - 4: rows 0..3 none, row 4 key 0 only (so its output is v_0).
    for (let x = 0; x < 16; x++) expect(o[x]).toBeNaN();
    for (let c = 0; c < 4; c++) expect(o[16 + c]).toBeCloseTo(v[c]!, 6);
    const grads = new Float32Array(24 + 8 + 8).fill(7);
    const oFinite = o.map((x) => (Number.isNaN(x) ? 0 : x));
    buildAttentionBackward(s).run([grads, q, k, v, oFinite, dO]);
    for (let x = 0; x < 16; x++) expect(grads[x]).toBe(0);
    expect(Array.from(grads).every(Number.isFinite)).toBe(true);
    // dV_0 = sum over the rows that see key 0 of P_i0 dO_i; row 4 sees key 0 alone (P = 1).
    expect(grads[24 + 8]).not.toBe(0);
  });
});
