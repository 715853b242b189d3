// The cpu backend's wasm SIMD spelling of f32 elementwise kernels (render_wasm.ts) against its JS spelling
// (render_js.ts, the spec) on the same graphs: broadcasts, permutes, slices, pads read through `where`,
// comparisons, casts of integer index math, exp and tanh, including values at the ends of the f32 range.
// Results agree to f32 rounding (the JS computes each kernel in doubles and rounds once at the store).

import { afterEach, describe, expect, it } from "vitest";
import type { Backend } from "../../src/core/backend.js";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import type { Tensor } from "../../src/index.js";
import { arange, matmul, tensor } from "../../src/index.js";

/** A cpu backend that records, per compiled kernel, whether it got a wasm spelling. */
class Recording extends CpuBackend {
  readonly kernels: { name: string; wasm: boolean }[] = [];
  override async compile(k: Parameters<Backend["compile"]>[0]) {
    const exe = await super.compile(k);
    this.kernels.push({ name: k.name, wasm: exe.source.includes("wasm simd") });
    return exe;
  }
  override async routine(...args: Parameters<Backend["routine"]>) {
    const exe = await super.routine(...args);
    this.kernels.push({ name: args[0], wasm: (this.source(exe) ?? "").includes("epilogue in wasm simd") });
    return exe;
  }
}

const saved = process.env.KILN_CPU_WASM_KERNELS;
afterEach(() => {
  if (saved === undefined) delete process.env.KILN_CPU_WASM_KERNELS;
  else process.env.KILN_CPU_WASM_KERNELS = saved;
});

/** A backend whose kernels are compiled with the wasm spelling on or off. */
function backendWith(wasm: boolean): Recording {
  const b = new Recording();
  process.env.KILN_CPU_WASM_KERNELS = wasm ? "1" : "0";
  return b;
}

/** Deterministic values in [-4, 4) with a few exact zeros. */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, (_, i) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return i % 37 === 0 ? 0 : (s / 2 ** 32) * 8 - 4;
  });
}

/** Units in the last place of f32 between a and b (0 for equal, NaN = NaN; Infinity for a sign/NaN mismatch). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return 0;
  const i = new Int32Array(new Float32Array([a, b]).buffer);
  const key = (x: number) => (x < 0 ? -2147483648 - x : x);
  return Math.abs(key(i[0]!) - key(i[1]!));
}

async function run(wasm: boolean, graph: (b: Backend) => Tensor): Promise<{ out: Float32Array; kernels: Recording["kernels"] }> {
  const backend = backendWith(wasm);
  const out = (await graph(backend).data()) as Float32Array;
  return { out, kernels: backend.kernels };
}

async function both(graph: (b: Backend) => Tensor): Promise<{ wasm: Float32Array; js: Float32Array; wasmKernels: number }> {
  const w = await run(true, graph);
  const j = await run(false, graph);
  expect(j.kernels.some((k) => k.wasm)).toBe(false);
  return { wasm: w.out, js: j.out, wasmKernels: w.kernels.filter((k) => k.wasm).length };
}

/**
 * Runs a graph with and without the wasm spelling. worst: the largest ulp distance; worstScaled: the largest
 * |wasm - js| over the output's largest magnitude (f32 rounding per op shows as absolute error at the
 * output's scale where a chain cancels, as GELU's 1 + tanh(x) does at x = -4).
 */
async function compare(graph: (b: Backend) => Tensor): Promise<{ worst: number; worstScaled: number; wasmKernels: number; js: Float32Array }> {
  const { wasm, js, wasmKernels } = await both(graph);
  const [w, j] = [{ out: wasm }, { out: js }];
  expect(w.out.length).toBe(j.out.length);
  let worst = 0;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < w.out.length; i++) {
    const [a, b] = [w.out[i]!, j.out[i]!];
    worst = Math.max(worst, ulps(a, b));
    if (Number.isFinite(b)) scale = Math.max(scale, Math.abs(b));
    if (Number.isFinite(a) || Number.isFinite(b)) diff = Math.max(diff, a === b ? 0 : Math.abs(a - b));
  }
  return { worst, worstScaled: diff / Math.max(scale, 1e-30), wasmKernels, js };
}

describe("cpu wasm SIMD elementwise kernels", () => {
  it("exp and tanh stay within a few ulp of the JS over the f32 range, with its NaN, Inf, 0 and subnormal ends", async () => {
    const special = [NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 3e-4, -3e-4, 4e-4, 88.72, 88.73, 89, 100, -87.3, -88, -100, -103.9, -104, -110, 7.9, -7.9, 7.906, 8, -9, 20, -20];
    const sweep = Array.from({ length: 1024 - special.length }, (_, i) => -105 + (i * 195) / 1000);
    const xs = [...special, ...sweep];
    for (const op of ["exp", "tanh"] as const) {
      const { wasm, js, wasmKernels } = await both((backend) => tensor(xs, { backend })[op]());
      expect(wasmKernels, op).toBe(1);
      xs.forEach((x, i) => {
        const [a, b] = [wasm[i]!, js[i]!];
        // exp: 2 ulp of the JS (exp_f32.ts is within 1 of the exact value, as is the JS's rounding), also for subnormal results (an ulp is absolute there). tanh: 3 ulp where |x| < 7.9;
        // beyond, the clamped rational gives +-1, within 3e-7 of the exact value (at most 5 ulp).
        if (op === "tanh" && Math.abs(x) >= 7.9) expect(Math.abs(a - b), `tanh(${x})`).toBeLessThanOrEqual(3e-7);
        else expect(ulps(a, b), `${op}(${x}): ${a} vs ${b}`).toBeLessThanOrEqual(op === "exp" ? 2 : 3);
      });
      // And the JS itself is right: its values are Math's, rounded to f32 (tanh to its own 3 ulp).
      xs.forEach((x, i) => expect(ulps(js[i]!, Math.fround(Math[op](Math.fround(x)))), `${op}(${x})`).toBeLessThanOrEqual(op === "exp" ? 0 : 3));
    }
  });

  it("matches the JS on broadcasts, permutes, slices, pads through where, comparisons and iota casts", async () => {
    const graphs: Record<string, (b: Backend) => Tensor> = {
      "bias add + GELU": (backend) => {
        const x = tensor(values(24 * 64, 1), { backend }).reshape([24, 64]);
        const bias = tensor(values(64, 2), { backend });
        const h = x.add(bias);
        return h.mul(0.5).mul(h.add(h.mul(h).mul(h).mul(0.044715)).mul(0.7978845608).tanh().add(1));
      },
      "row broadcast (norm apply)": (backend) => {
        const x = tensor(values(32 * 48, 3), { backend }).reshape([32, 48]);
        const mean = tensor(values(32, 4), { backend }).reshape([32, 1]);
        const w = tensor(values(48, 5), { backend });
        return x.sub(mean).mul(mean.abs().add(1e-5).sqrt().rdiv(1)).mul(w);
      },
      "head permute": (backend) => tensor(values(2 * 16 * 4 * 8, 6), { backend }).reshape([2, 16, 4, 8]).permute([0, 2, 1, 3]).neg(),
      "transpose (strided lanes)": (backend) => tensor(values(40 * 24, 7), { backend }).reshape([40, 24]).transpose(0, 1).neg(),
      "odd-width transpose (gathered lanes)": (backend) => tensor(values(34 * 30, 8), { backend }).reshape([34, 30]).transpose(0, 1).neg(),
      "slice at an offset": (backend) => tensor(values(50 * 40, 9), { backend }).reshape([50, 40]).slice(1, 3, 35).slice(0, 2, 48).mul(2),
      "pad read through where": (backend) => tensor(values(30 * 30, 10), { backend }).reshape([30, 30]).pad([[1, 1], [3, 3]], -7).tanh(),
      "comparisons and where": (backend) => {
        const x = tensor(values(1024, 11), { backend });
        const y = tensor(values(1024, 12), { backend });
        return x.lt(y).and(x.gt(-1)).where(x.maximum(y), y.minimum(x.mul(-2))).sub(x.eq(0).where(5, 0));
      },
      "iota cast (causal mask)": (backend) => {
        const i = arange(64, undefined, 1, { backend }).reshape([64, 1]);
        const j = arange(64, undefined, 1, { backend }).reshape([1, 64]);
        const s = tensor(values(64 * 64, 13), { backend }).reshape([64, 64]);
        return j.gt(i).where(-Infinity, s).add(i.cast("f32").mul(0.25)).exp();
      },
    };
    for (const [name, graph] of Object.entries(graphs)) {
      const { worst, worstScaled, wasmKernels } = await compare(graph);
      expect(wasmKernels, `${name}: a kernel ran as wasm`).toBeGreaterThan(0);
      // Each op rounds to f32 in wasm, once per kernel in JS: within ~8 ulp of the output's scale (an exp amplifies its argument's rounding), and
      // exact to the bit where a kernel only moves values.
      expect(worstScaled, name).toBeLessThan(1e-6);
      if (/permute|transpose|slice/.test(name)) expect(worst, name).toBe(0);
    }
  });

  it("applies matmul epilogues (bias + GELU, a residual) in wasm, on the few-rows and the packed paths", async () => {
    for (const [m, k, n] of [[48, 32, 40], [300, 64, 72]] as const) {
      const gelu = (backend: Backend) => {
        const x = tensor(values(m * k, 21), { backend }).reshape([m, k]).mul(0.25);
        const w = tensor(values(k * n, 22), { backend }).reshape([k, n]).mul(0.25);
        const h = matmul(x, w).add(tensor(values(n, 23), { backend }));
        return h.mul(0.5).mul(h.add(h.mul(h).mul(h).mul(0.044715)).mul(0.7978845608).tanh().add(1)).add(tensor(values(m * n, 24), { backend }).reshape([m, n]));
      };
      const { worstScaled } = await compare(gelu);
      const backend = backendWith(true);
      await gelu(backend).data();
      expect(backend.kernels.filter((x) => x.name === "matmul"), `${m}x${k}x${n}: one matmul, its epilogue in wasm`).toEqual([{ name: "matmul", wasm: true }]);
      expect(worstScaled, `${m}x${k}x${n}`).toBeLessThan(1e-6);
    }
  });

  it("keeps kernels it cannot spell, or too small, as JS", async () => {
    const backend = backendWith(true);
    await tensor(values(512, 14), { backend }).sin().data(); // sin has no wasm spelling
    await tensor(values(64, 15), { backend }).exp().data(); // too few elements
    await tensor(values(1022, 16), { backend }).exp().data(); // not a multiple of 4
    expect(backend.kernels.map((k) => k.wasm)).toEqual([false, false, false]);
  });
});

