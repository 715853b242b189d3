// The conformance harness: one suite, every backend present. A case is a function from input
// tensors to output tensors; it runs on the backend under test in the dtype under test, and on
// the cpu backend in float64 from the same (dtype-rounded) inputs with routines off: that is the
// reference. Results must agree within the dtype's tolerance, NaN for NaN and Inf for Inf.
// NOTE: the reference is the cpu renderer, so a cpu case without a routine compares cpu with itself;
// what cpu's ops mean is pinned by hand-written expected values instead (spec.test.ts).
// A skip-table hit or a missing backend is reported through vitest's own skip, with its reason.
// Under CI=true a backend that should be present (webgpu: CI installs chromium) must be present.

import type { TestContext } from "vitest";
import type { Backend, DType, Tensor } from "../../src/index.js";
import { getBackend, tensor, withRoutines } from "../../src/index.js";
import { isFloat, roundTo } from "../../src/core/dtype.js";
import { noBackend } from "../helpers/skip_reasons.js";
import { skipReason } from "./skips.js";

export interface BackendUnderTest {
  readonly name: string;
  readonly backend?: Backend;
  readonly missing?: string;
}

/** Every backend kiln knows, started if possible. cuda is expected only where a GPU is. */
export async function backendsUnderTest(): Promise<BackendUnderTest[]> {
  // NOTE: KILN_CONFORMANCE_RECORD=<dir>: cpu and a "cuda" that records each kernel's CUDA C, inputs and
  // cpu outputs into <dir> (test/helpers/kernel_recorder.ts; test/unit/cuda_render.test.ts reads them).
  const record = process.env.KILN_CONFORMANCE_RECORD;
  if (record) {
    const { RecordingBackend } = await import("../helpers/kernel_recorder.js");
    return [{ name: "cpu", backend: await getBackend("cpu") }, { name: "cuda", backend: new RecordingBackend(record) }];
  }
  const out: BackendUnderTest[] = [];
  for (const name of ["cpu", "webgpu"] as const) {
    try {
      out.push({ name, backend: await getBackend(name) });
    } catch (err) {
      const missing = (err as Error).message;
      if (process.env.CI === "true") {
        throw new Error(`CI: backend ${name} must be present here but is not: ${missing}`);
      }
      out.push({ name, missing });
    }
  }
  // NOTE: KILN_CONFORMANCE_CUDA=1 (npm run test:gpu sets it) adds the real cuda backend, which must start.
  if (process.env.KILN_CONFORMANCE_CUDA === "1") out.push({ name: "cuda", backend: await getBackend("cuda") });
  return out;
}

/** Deterministic test data (mulberry32), so failures reproduce. */
export { mulberry32 as rng } from "../../src/core/mulberry32.js";
import { mulberry32 as rng } from "../../src/core/mulberry32.js";

/** Host values suited to a dtype: floats in [lo, hi), ints in a small range, bools. */
export function values(n: number, dtype: DType, seed = 1, lo = -2, hi = 2): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const x = lo + (hi - lo) * r();
    if (dtype === "bool") return x > (lo + hi) / 2 ? 1 : 0;
    if (dtype === "u8") return Math.floor(r() * 256);
    if (dtype === "u32") return Math.floor(r() * 1000);
    if (dtype === "i32") return Math.floor(x * 50);
    return x;
  });
}

export interface Input {
  readonly shape: readonly number[];
  /** Host values; defaults to values(numel, dtype, seed). */
  readonly data?: readonly number[];
  /** Overrides the case's dtype (e.g. int indices). */
  readonly dtype?: DType;
  readonly seed?: number;
  readonly lo?: number;
  readonly hi?: number;
}

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

const TOL: Record<DType, Tolerance> = {
  f64: { rtol: 1e-12, atol: 1e-12 },
  f32: { rtol: 2e-5, atol: 2e-5 },
  f16: { rtol: 2e-3, atol: 2e-3 },
  bf16: { rtol: 1.6e-2, atol: 1.6e-2 },
  i32: { rtol: 0, atol: 0 },
  u32: { rtol: 0, atol: 0 },
  u8: { rtol: 0, atol: 0 },
  bool: { rtol: 0, atol: 0 },
};

export function tolerance(dtype: DType, scale = 1): Tolerance {
  const t = TOL[dtype];
  return { rtol: t.rtol * scale, atol: t.atol * scale };
}

function hostInput(inp: Input, dtype: DType, i: number): { dtype: DType; data: number[] } {
  const dt = inp.dtype ?? dtype;
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const raw = inp.data ? [...inp.data] : values(n, dt, inp.seed ?? 7 + i * 13, inp.lo, inp.hi);
  return { dtype: dt, data: raw.map((x) => roundTo(x, dt)) };
}

/**
 * Run `fn` on the backend in `dtype` and as the f64 cpu reference; return both flattened.
 * Integer and bool inputs keep their dtype in the reference (exact semantics).
 */
export async function runBoth(
  backend: Backend,
  dtype: DType,
  inputs: readonly Input[],
  fn: (...xs: Tensor[]) => Tensor,
): Promise<{ got: number[]; want: number[]; out: Tensor }> {
  const cpu = await getBackend("cpu");
  const hosts = inputs.map((inp, i) => hostInput(inp, dtype, i));
  const xs = hosts.map((h, i) => tensor(h.data, { backend, dtype: h.dtype, shape: inputs[i]!.shape }));
  const refs = hosts.map((h, i) =>
    tensor(h.data, { backend: cpu, dtype: isFloat(h.dtype) ? "f64" : h.dtype, shape: inputs[i]!.shape }),
  );
  const out = fn(...xs);
  const ref = withRoutines(false, () => fn(...refs));
  const got = Array.from(await out.data());
  const want = Array.from(await ref.data());
  if (out.shape.join() !== ref.shape.join()) throw new Error(`shape ${out.shape} != reference ${ref.shape}`);
  // The reference is exact; the backend stores its dtype: compare against the stored rounding.
  return { got, want: want.map((w) => roundTo(w, out.dtype)), out };
}

/** Assert agreement; the message names the first bad element. */
export function expectClose(got: readonly number[], want: readonly number[], tol: Tolerance, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, reference has ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    const close = Number.isFinite(w) && Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w);
    if (Number.isNaN(w) ? Number.isNaN(g) : g === w || close) continue;
    throw new Error(`${what}: element ${i} is ${g}, reference ${w} (rtol ${tol.rtol}, atol ${tol.atol})`);
  }
}

/**
 * The backend to run a case on, or a skip of the running test (vitest's own, so the report shows
 * it as skipped with the reason) when the backend is missing or the skip table lists the case.
 * NOTE: the skip ends the whole test; a test that loops over several case names stops at the first
 * listed one, so keep listed gaps in tests of their own.
 */
export function backendFor(ctx: TestContext, b: BackendUnderTest, name: string, dtype: DType): Backend {
  if (!b.backend) return ctx.skip(noBackend(b.name, b.missing));
  const reason = skipReason(b.name, name, dtype);
  if (reason) return ctx.skip(`skip table: ${name} [${dtype} on ${b.name}]: ${reason}`);
  // NOTE: an unsupported dtype is a gap like any other: it belongs in the skip table, with its reason.
  if (!b.backend.caps.dtypes.includes(dtype)) throw new Error(`${name}: ${b.name} does not support ${dtype} and no skip entry says why`);
  return b.backend;
}

/** The one entry tests use: honour the skip table, run, compare. */
export async function conform(
  ctx: TestContext,
  b: BackendUnderTest,
  name: string,
  dtype: DType,
  inputs: readonly Input[],
  fn: (...xs: Tensor[]) => Tensor,
  tolScale = 1,
): Promise<void> {
  const backend = backendFor(ctx, b, name, dtype);
  const { got, want, out } = await runBoth(backend, dtype, inputs, fn);
  expectClose(got, want, tolerance(out.dtype, tolScale), `${name} [${dtype} on ${b.name}]`);
}
