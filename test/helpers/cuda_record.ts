// cuda_record.ts: the kernels the conformance suite produces, for test/unit/cuda_render.test.ts. Runs
// test/conformance's "on cuda" tests in a child vitest with KILN_CONFORMANCE_RECORD set (kernel_recorder.ts
// stands in for the cuda backend there), and caches the records by a hash of every source they depend
// on (src/, test/conformance/, the recorder), so a rerun on an unchanged tree skips the child run.
// Also the host runner's launch file (cuda_host_main.cpp reads it) and the comparison of its outputs.

import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DType } from "../../src/core/dtype.js";
import { bf16BitsToF32, f16BitsToF32, isFloat } from "../../src/core/dtype.js";
import type { KernelRecord } from "./kernel_recorder.js";
import { cacheDir, sha } from "./cuda_compile.js";
import { start } from "./launch_procs.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const INPUTS = ["src", "test/conformance", "test/helpers/kernel_recorder.ts", "vitest.config.ts"];

function files(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).sort().flatMap((f) => files(join(path, f)));
}

/** A hash of every file the records depend on. */
export const treeHash = (): string => sha(...INPUTS.flatMap(files).map((f) => `${f}\n${readFileSync(join(ROOT, f), "utf8")}`));

/**
 * Every recorded launch of the conformance suite's kernels (from the cache when the tree is unchanged).
 * The child run must pass: the recorder runs on the cpu backend, so a failure there is a bug of its own.
 */
export async function conformanceKernels(limitMs: number): Promise<{ records: KernelRecord[]; cached: boolean }> {
  const cached = join(cacheDir(), `records-${treeHash()}.json`);
  try {
    return { records: JSON.parse(readFileSync(cached, "utf8")) as KernelRecord[], cached: true };
  } catch {
    // Not cached yet: record.
  }
  const dir = mkdtempSync(join(tmpdir(), "kiln-cuda-rec-"));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, KILN_CONFORMANCE_RECORD: dir };
    // NOTE: the child filters to the "on cuda" tests; under CI=true the skip reporter would fail it for
    // the tests that filter skips, which are not gaps.
    delete env.CI;
    const vitest = join(ROOT, "node_modules", "vitest", "vitest.mjs");
    const ended = await start(process.execPath, [vitest, "run", "test/conformance", "-t", " on cuda", "--reporter=dot", `--root=${ROOT}`], limitMs, env).ended;
    if (ended.code !== 0) throw new Error(`the recorded conformance run failed (exit ${ended.code}):\n${(ended.stdout + ended.stderr).slice(-4000)}`);
    const records = readdirSync(dir).flatMap((f) =>
      readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as KernelRecord));
    writeFileSync(`${cached}.${process.pid}`, JSON.stringify(records));
    renameSync(`${cached}.${process.pid}`, cached);
    return { records, cached: false };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Blocks of a __syncthreads kernel the host runs: its 256 threads are fibers, and a few thousand blocks
 * of ten barriers each take minutes. Block g of a block reduction computes output g, so the first
 * SYNC_BLOCKS outputs are checked (firstMismatch's `upTo`).
 */
export const SYNC_BLOCKS = 16;
export const blocksRun = (r: KernelRecord): number => (r.blockSync ? Math.min(r.grid!, SYNC_BLOCKS) : r.grid!);

/** The launch file cuda_host_main.cpp reads: each launch's kernel, geometry and buffers (output zeroed). */
export function launchFile(launches: readonly KernelRecord[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  u32(launches.length);
  for (const r of launches) {
    u32(r.entry!.length);
    parts.push(Buffer.from(r.entry!, "latin1"));
    u32(blocksRun(r)); u32(r.block!); u32(r.blockSync ? 1 : 0);
    const bufs = [Buffer.alloc(Buffer.from(r.output!, "base64").length), ...r.inputs!.map((s) => Buffer.from(s, "base64"))];
    u32(bufs.length);
    for (const b of bufs) { u32(b.length); parts.push(b); }
  }
  return Buffer.concat(parts);
}

/** The output buffers the runner wrote, one per launch, in order. */
export function readOutputs(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length;) {
    const n = buf.readUInt32LE(at);
    out.push(buf.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

export function decode(b: Buffer, d: DType): number[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  const size = { f64: 8, f32: 4, i32: 4, u32: 4, f16: 2, bf16: 2, u8: 1, bool: 1 }[d];
  for (let i = 0; i + size <= b.length; i += size) {
    switch (d) {
      case "f64": out.push(view.getFloat64(i, true)); break;
      case "f32": out.push(view.getFloat32(i, true)); break;
      case "i32": out.push(view.getInt32(i, true)); break;
      case "u32": out.push(view.getUint32(i, true)); break;
      case "f16": out.push(f16BitsToF32(view.getUint16(i, true))); break;
      case "bf16": out.push(bf16BitsToF32(view.getUint16(i, true))); break;
      case "u8": case "bool": out.push(view.getUint8(i)); break;
    }
  }
  return out;
}

/**
 * Float tolerance per output dtype: a few units in the last place of the dtype (the cpu backend computes
 * in doubles and rounds once; C computes in float and rounds at every op), as the conformance suite's.
 */
const FLOAT_TOL: Partial<Record<DType, number>> = { f64: 1e-12, f32: 1e-5, f16: 2e-3, bf16: 1.6e-2 };

/**
 * The first element where the host-run kernel disagrees with the cpu backend, or undefined. Ints and bool
 * must match exactly; floats within FLOAT_TOL (scaled up for long float reductions, whose float
 * accumulator rounds once per element where the cpu's double does not), NaN for NaN, Inf for Inf.
 */
export function firstMismatch(r: KernelRecord, got: Buffer, upTo = Infinity): string | undefined {
  const d = r.dtypes![0]!;
  const want = decode(Buffer.from(r.output!, "base64"), d).slice(0, upTo);
  const have = decode(got, d).slice(0, upTo);
  if (have.length !== want.length) return `${have.length} values, the cpu backend gave ${want.length}`;
  const tol = isFloat(d) ? FLOAT_TOL[d]! * Math.max(1, Math.sqrt(r.reduceSize ?? 1)) : 0;
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [have[i]!, want[i]!];
    if (Number.isNaN(w) ? Number.isNaN(g) : g === w || (Number.isFinite(w) && Math.abs(g - w) <= tol * (1 + Math.abs(w)))) continue;
    return `element ${i} is ${g}, the cpu backend gave ${w} (${d}, tolerance ${tol.toPrecision(2)})`;
  }
  return undefined;
}
