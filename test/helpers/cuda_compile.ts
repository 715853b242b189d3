// cuda_compile.ts: compiling rendered CUDA C for test/unit/cuda_render.test.ts, without a GPU: nvcc
// for the device (sm_90a cubins, so ptxas checks them too), and a host C++ compiler with the shim
// (cuda_host_shim.h) for the cpu. Every output is cached by a hash of its command and inputs under
// cacheDir(), so a rerun compiles only what changed. Kernels are batched into a few translation units,
// each picked by a hash of the kernel's entry name, so one changed kernel recompiles one unit.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { CUDA_PRELUDE } from "../../src/backends/cuda/cuda_ops.js";
import { storageType } from "../../src/backends/cuda/cuda_ops.js";
import type { DType } from "../../src/core/dtype.js";
import { start } from "./launch_procs.js";

const HERE = dirname(fileURLToPath(import.meta.url));

/** Where compiled outputs are kept between runs (KILN_CUDA_CACHE, else a folder in the temp dir). */
export function cacheDir(): string {
  const dir = process.env.KILN_CUDA_CACHE ?? join(tmpdir(), "kiln-cuda-check");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export const sha = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 24);

/** nvcc on PATH, else under CUDA_HOME or /usr/local/cuda; undefined when there is none. */
export function findNvcc(): string | undefined {
  for (const nvcc of ["nvcc", join(process.env.CUDA_HOME ?? "/usr/local/cuda", "bin", "nvcc"), "/usr/local/cuda/bin/nvcc"]) {
    const r = spawnSync(nvcc, ["--version"], { encoding: "utf8", timeout: 20_000 });
    if (r.status === 0) return nvcc;
  }
  return undefined;
}

/** A tool's version line, part of every cache key (a new compiler recompiles). */
export function toolVersion(tool: string): string {
  const r = spawnSync(tool, ["--version"], { encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${tool} --version failed: ${r.stderr || r.error?.message}`);
  return r.stdout.trim().split("\n").pop()!;
}

/** A kernel to compile: its entry point, code (render_cuda.ts's CudaKernel) and slot dtypes. */
export interface UnitKernel {
  readonly entry: string;
  readonly code: string;
  readonly dtypes: readonly DType[];
}

/** Splits kernels into `units` groups by a hash of their entry names (stable as kernels come and go). */
export function batch<K extends UnitKernel>(kernels: readonly K[], units: number): K[][] {
  const out: K[][] = Array.from({ length: units }, () => []);
  for (const k of [...kernels].sort((a, b) => (a.entry < b.entry ? -1 : 1))) out[parseInt(sha(k.entry).slice(0, 8), 16) % units]!.push(k);
  return out.filter((u) => u.length > 0);
}

export const deviceUnit = (kernels: readonly UnitKernel[]) => [CUDA_PRELUDE, ...kernels.map((k) => k.code)].join("\n");

/** The same kernels for the host: the shim, the prelude, the kernels, and a registrar per kernel. */
export function hostUnit(kernels: readonly UnitKernel[]): string {
  const calls = kernels.map((k) => {
    const args = [
      ...k.dtypes.map((d, i) => `(${i === 0 ? "" : "const "}${storageType(d)}*)b[${i}]`),
      ...k.dtypes.slice(1).map((d, i) => `(unsigned)(n[${i + 1}] / sizeof(${storageType(d)}))`),
    ].join(", ");
    return `static void call_${k.entry}(void** b, const unsigned* n) { ${k.entry}(${args}); }\nstatic kiln_shim_registrar reg_${k.entry}("${k.entry}", call_${k.entry});`;
  });
  return ['#include "cuda_host_shim.h"', CUDA_PRELUDE, ...kernels.map((k) => k.code), ...calls].join("\n");
}

/** A compile that failed: the compiler's message with the source lines it names quoted after it. */
export function explainFailure(tool: string, source: string, stderr: string): string {
  const lines = source.split("\n");
  const quoted = [...stderr.matchAll(/\.(?:cu|cpp)\((\d+)\)|\.(?:cu|cpp):(\d+):/g)].slice(0, 5).map((m) => {
    const n = Number(m[1] ?? m[2]);
    // The nearest kernel comment above the line names the kernel.
    const owner = lines.slice(0, n).reverse().find((l) => l.startsWith("// ") && l.includes(": n="));
    return `  line ${n}: ${lines[n - 1]?.trim()}\n    in ${owner ?? "the prelude"}`;
  });
  return `${tool} failed:\n${stderr.trim().split("\n").slice(0, 20).join("\n")}\n${quoted.join("\n")}`;
}

/**
 * Runs `tool args... -o <out> <src>` unless the cache has its output: the source is written beside it,
 * the output is renamed into place only when the compile succeeds. Resolves to the output's path.
 */
export async function compileCached(tool: string, version: string, args: readonly string[], source: string, ext: string, limitMs: number): Promise<{ path: string; cached: boolean }> {
  const dir = cacheDir();
  const key = sha(tool, version, args.join(" "), source);
  const out = join(dir, `${key}${ext}`);
  if (existsSync(out)) return { path: out, cached: true };
  const src = join(dir, `${key}${ext === ".cubin" ? ".cu" : ".cpp"}`);
  writeFileSync(src, source);
  const tmp = `${out}.${process.pid}.tmp`;
  const ended = await start(tool, [...args, "-o", tmp, src], limitMs).ended;
  if (ended.code !== 0) throw new Error(explainFailure(tool, source, ended.stderr + ended.stdout));
  renameSync(tmp, out);
  return { path: out, cached: false };
}

const SHIM = readFileSync(join(HERE, "cuda_host_shim.h"), "utf8");
/**
 * Host C++ flags: the shim's folder on the include path (and its hash, so a changed shim recompiles);
 * ASan and UBSan catch out-of-range reads and C's undefined behaviour (signed overflow, bad shifts).
 * NOTE: -O0 compiles in half the CPU time of -O1 (2.2 s against 5.0 s for a unit of ~220 kernels), and
 * the kernels run on small inputs, so their speed does not matter here.
 */
export const HOST_FLAGS = ["-std=c++20", "-O0", "-g0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", `-I${HERE}`, `-DKILN_SHIM_HASH=${sha(SHIM)}`];

/** Compiles the host runner's main once (cached like the rest). */
export async function hostMain(cxx: string, version: string, limitMs: number): Promise<string> {
  const source = readFileSync(join(HERE, "cuda_host_main.cpp"), "utf8");
  return (await compileCached(cxx, version, [...HOST_FLAGS, "-c"], source, ".o", limitMs)).path;
}

/** Links the host objects into the runner (cached by the objects' names, which are their hashes). */
export async function hostLink(cxx: string, objects: readonly string[], limitMs: number): Promise<string> {
  const out = join(cacheDir(), `${sha(...objects)}.run`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const ended = await start(cxx, [...HOST_FLAGS, "-pthread", "-o", tmp, ...objects], limitMs).ended;
  if (ended.code !== 0) throw new Error(`${cxx} link failed:\n${ended.stderr}`);
  renameSync(tmp, out);
  return out;
}

/** Runs `jobs` at most `width` at a time (the CI machine has 2 cores). */
export async function pool<T>(jobs: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return out;
}
