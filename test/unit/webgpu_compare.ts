// webgpu_compare.ts: what the webgpu unit tests share: a backend (or why there is none), running one
// KernelSpec on a backend from host values, and comparing against the cpu backend (the spec).

import type { Backend } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode, itemsize } from "../../src/core/dtype.js";
import type { KernelSpec } from "../../src/core/ir.js";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import type { WebgpuBackend } from "../../src/backends/webgpu/backend.js";
import { createWebgpuBackend } from "../../src/backends/webgpu/index.js";
import { noWebgpu } from "../helpers/skip_reasons.js";

/** A backend on a fresh device, or the reason there is none (tests skip on it, with skipLabel). */
export async function tryWebgpu(): Promise<{ gpu?: WebgpuBackend; missing?: string }> {
  try {
    return { gpu: await createWebgpuBackend() };
  } catch (err) {
    return { missing: noWebgpu(err) };
  }
}

export const cpu = new CpuBackend();

/** Runs `spec` on `backend` with inputs given as host values; returns the output's host values. */
export async function runSpec(backend: Backend, spec: KernelSpec, inputs: readonly (readonly number[])[]): Promise<number[]> {
  const exe = await backend.compile(spec);
  const out = backend.alloc(spec.n * itemsize(spec.out));
  const bufs = spec.inputs.map((d, i) => {
    const bytes = encode(inputs[i]!, d);
    const b = backend.alloc(bytes.byteLength);
    backend.write(b, bytes);
    return b;
  });
  backend.launch(exe, [out, ...bufs]);
  const got = decode(await backend.read(out), spec.out, spec.n);
  for (const b of [out, ...bufs]) backend.free(b);
  return got;
}

/** Same values within tolerance; NaN matches NaN and infinities match exactly. */
export function expectSame(got: readonly number[], want: readonly number[], dtype: DType, what: string, tol = 1e-5): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, want ${want.length}`);
  const exact = dtype !== "f32" && dtype !== "f16" && dtype !== "bf16";
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Object.is(g, w) || g === w || (Number.isNaN(g) && Number.isNaN(w))) continue;
    if (!exact && Number.isFinite(w) && Math.abs(g - w) <= tol * (1 + Math.abs(w))) continue;
    throw new Error(`${what}: element ${i} is ${g}, want ${w}\n  got  ${got.join(", ")}\n  want ${want.join(", ")}`);
  }
}

/** Runs `spec` on the cpu backend and on `gpu` and expects the same output. */
export async function expectLikeCpu(gpu: Backend, spec: KernelSpec, inputs: readonly (readonly number[])[], tol?: number): Promise<void> {
  const want = await runSpec(cpu, spec, inputs);
  const got = await runSpec(gpu, spec, inputs);
  expectSame(got, want, spec.out, spec.name, tol);
}
