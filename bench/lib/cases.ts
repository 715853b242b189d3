// cases.ts lists what the kernel benchmark times: matmul (square, batched, transposed B, f16, and
// decode-shaped: few rows against a weight matrix stored (out, in), x @ W^T), softmax,
// causal attention (dense heads and grouped-query) and a fused elementwise chain, at the sizes of a
// profile, each with its amount of work (flops or bytes moved) and a graph builder over realized inputs.
// It does not time anything (suite.ts) nor choose the routine or primitive path (the caller's withRoutines).

import type { Backend, DType, Tensor } from "../../src/index.js";
import { attention, gelu, matmul, softmax, tensor } from "../../src/index.js";

export type CaseOp = "matmul" | "softmax" | "attention" | "elementwise";
export type Unit = "GFLOP/s" | "GB/s";

export interface AttentionSize {
  readonly batch: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly t: number;
  readonly headDim: number;
}

/** The sizes one run uses. */
export interface SizeProfile {
  readonly name: "full" | "software" | "browser-smoke" | "tiny";
  readonly matmul: readonly number[]; // square f32 sizes
  readonly matmulF16: readonly number[];
  readonly batched: { readonly batch: number; readonly m: number; readonly k: number; readonly n: number };
  readonly transposedB: number;
  /** Decode-shaped f32 matmuls: (m, k) @ (n, k)^T, few rows of activations against a stored weight matrix. */
  readonly decode: readonly { readonly m: number; readonly k: number; readonly n: number }[];
  readonly softmax: { readonly rows: number; readonly cols: number };
  readonly attention: readonly AttentionSize[]; // all causal
  readonly elementwise: number;
  /** Size of the plain JS triple-loop baseline (cpu only); it matches one of the square sizes. */
  readonly naive: number;
}

export const PROFILES: Readonly<Record<SizeProfile["name"], SizeProfile>> = {
  full: {
    name: "full",
    matmul: [64, 128, 256, 512],
    // NOTE: f16 stays at 256: the cpu primitive path converts every f16 it reads and takes ~11 s at 512^3.
    matmulF16: [256],
    batched: { batch: 8, m: 128, k: 64, n: 128 },
    transposedB: 512,
    // NOTE: an LM head (vocab 32000) for one sequence, and an MLP projection for a 32-sequence decode batch.
    decode: [{ m: 1, k: 512, n: 32000 }, { m: 32, k: 512, n: 2048 }],
    softmax: { rows: 1024, cols: 1024 },
    attention: [{ batch: 1, heads: 8, kvHeads: 8, t: 256, headDim: 64 }, { batch: 1, heads: 8, kvHeads: 2, t: 256, headDim: 64 }],
    elementwise: 1 << 20,
    naive: 512,
  },
  // NOTE: SwiftShader runs WGSL on the CPU, about 1000x slower than a GPU: every size stays <= 256.
  software: {
    name: "software",
    matmul: [64, 128, 256],
    matmulF16: [256],
    batched: { batch: 8, m: 128, k: 64, n: 128 },
    transposedB: 256,
    decode: [{ m: 1, k: 256, n: 2048 }, { m: 32, k: 256, n: 256 }],
    softmax: { rows: 256, cols: 256 },
    attention: [{ batch: 1, heads: 8, kvHeads: 8, t: 128, headDim: 64 }, { batch: 1, heads: 8, kvHeads: 2, t: 128, headDim: 64 }],
    elementwise: 256 * 256,
    naive: 256,
  },
  // NOTE: the browser page's quick run on a software GPU: the software sizes take ~40 s quick in Node on
  // 2 cores (a decode-shaped primitive matmul alone ~10 s), too long for a page to sit on. Still several
  // sizes per op, so the charts have lines. The Node CLI never picks it.
  "browser-smoke": {
    name: "browser-smoke",
    matmul: [32, 64, 128],
    matmulF16: [64],
    batched: { batch: 4, m: 64, k: 32, n: 64 },
    transposedB: 128,
    decode: [{ m: 1, k: 128, n: 512 }, { m: 8, k: 128, n: 128 }],
    softmax: { rows: 128, cols: 128 },
    attention: [{ batch: 1, heads: 4, kvHeads: 4, t: 64, headDim: 32 }, { batch: 1, heads: 4, kvHeads: 2, t: 64, headDim: 32 }],
    elementwise: 128 * 128,
    naive: 128,
  },
  tiny: {
    name: "tiny",
    matmul: [16],
    matmulF16: [16],
    batched: { batch: 2, m: 8, k: 4, n: 8 },
    transposedB: 16,
    decode: [{ m: 1, k: 16, n: 64 }, { m: 4, k: 16, n: 32 }],
    softmax: { rows: 8, cols: 16 },
    attention: [{ batch: 1, heads: 2, kvHeads: 2, t: 8, headDim: 4 }, { batch: 1, heads: 4, kvHeads: 2, t: 8, headDim: 4 }],
    elementwise: 256,
    naive: 16,
  },
};

/** Inputs on a device and the graph to time over them. */
export interface Prepared {
  /** Build the case's graph (lazy; the caller realizes and disposes it). */
  build(): Tensor;
  dispose(): void;
}

export interface BenchCase {
  readonly name: string;
  readonly op: CaseOp;
  readonly dtype: DType;
  /** Logical input shapes, as the user passes them. */
  readonly shapes: readonly (readonly number[])[];
  /** Flops (GFLOP/s) or bytes moved (GB/s) of one run. */
  readonly work: number;
  readonly unit: Unit;
  /** Whether a hand-written routine exists for it (then the primitive path is timed too). */
  readonly hasRoutine: boolean;
  setup(backend: Backend): Prepared;
}

/** Deterministic values in [-1, 1) (a hash of the index), so every backend sees the same inputs. */
export function hostValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(seed + 1, 0x85ebca77);
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d);
    out[i] = ((x ^ (x >>> 13)) >>> 8) / 2 ** 23 - 1;
  }
  return out;
}

function inputs(backend: Backend, dtype: DType, shapes: readonly (readonly number[])[]): Tensor[] {
  return shapes.map((shape, i) => tensor(hostValues(shape.reduce((a, b) => a * b, 1), i), { backend, dtype, shape }));
}

function prepared(ts: Tensor[], build: (ts: Tensor[]) => Tensor): Prepared {
  return { build: () => build(ts), dispose: () => ts.forEach((t) => t.dispose()) };
}

function matmulCase(name: string, dtype: DType, a: number[], b: number[], transB: boolean): BenchCase {
  // (..., m, k) @ (k, n), or @ (n, k)^T: 2*m*n*k flops per batch matrix.
  const [m, k] = a.slice(-2) as [number, number];
  const n = transB ? b[b.length - 2]! : b[b.length - 1]!;
  const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
  return {
    name, op: "matmul", dtype, shapes: [a, b], work: 2 * batch * m * n * k, unit: "GFLOP/s", hasRoutine: true,
    setup: (backend) => prepared(inputs(backend, dtype, [a, b]), ([x, y]) => matmul(x!, transB ? y!.transpose(-2, -1) : y!)),
  };
}

function attentionCase(s: AttentionSize, dtype: DType): BenchCase {
  const q = [s.batch, s.heads, s.t, s.headDim];
  const kv = [s.batch, s.kvHeads, s.t, s.headDim];
  const gqa = s.kvHeads < s.heads ? ` GQA ${s.heads}/${s.kvHeads}` : "";
  return {
    name: `attention causal B${s.batch} H${s.heads} T${s.t} D${s.headDim}${gqa}`,
    op: "attention", dtype, shapes: [q, kv, kv],
    // 2 matmuls of 2*Tq*Tk*D flops per head; causal masking skips half of them.
    work: (4 * s.batch * s.heads * s.t * s.t * s.headDim) / 2,
    unit: "GFLOP/s", hasRoutine: true,
    setup: (backend) => prepared(inputs(backend, dtype, [q, kv, kv]), ([x, y, z]) => attention(x!, y!, z!, { causal: true })),
  };
}

/** The cases of a profile; f16 ones only where the backend stores f16. */
export function benchCases(p: SizeProfile, backend: Backend): BenchCase[] {
  const f32 = "f32" as const;
  const cases: BenchCase[] = p.matmul.map((s) => matmulCase(`matmul ${s}x${s}x${s}`, f32, [s, s], [s, s], false));
  if (backend.caps.dtypes.includes("f16")) {
    for (const s of p.matmulF16) cases.push(matmulCase(`matmul ${s}x${s}x${s}`, "f16", [s, s], [s, s], false));
  }
  const { batch, m, k, n } = p.batched;
  cases.push(matmulCase(`matmul batched ${batch}x(${m}x${k} @ ${k}x${n})`, f32, [batch, m, k], [k, n], false));
  const t = p.transposedB;
  cases.push(matmulCase(`matmul ${t}x${t}x${t} B transposed`, f32, [t, t], [t, t], true));
  for (const d of p.decode) cases.push(matmulCase(`matmul decode ${d.m}x${d.k} @ (${d.n}x${d.k})^T`, f32, [d.m, d.k], [d.n, d.k], true));

  const { rows, cols } = p.softmax;
  cases.push({
    name: `softmax ${rows}x${cols}`, op: "softmax", dtype: f32, shapes: [[rows, cols]],
    work: 2 * rows * cols * 4, unit: "GB/s", hasRoutine: true, // one read and one write of each element
    setup: (b) => prepared(inputs(b, f32, [[rows, cols]]), ([x]) => softmax(x!, -1)),
  });
  for (const s of p.attention) cases.push(attentionCase(s, f32));

  const e = p.elementwise;
  cases.push({
    name: `gelu(x*a+b) ${e}`, op: "elementwise", dtype: f32, shapes: [[e], [e], [e]],
    work: 4 * e * 4, unit: "GB/s", hasRoutine: false, // reads x, a, b and writes the result
    setup: (b) => prepared(inputs(b, f32, [[e], [e], [e]]), ([x, y, z]) => gelu(x!.mul(y!).add(z!))),
  });
  return cases;
}
