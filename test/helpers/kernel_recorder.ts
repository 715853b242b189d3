// kernel_recorder.ts: a backend under test named "cuda" that runs on the cpu backend and records, for
// every kernel the conformance suite makes it compile, the CUDA C render_cuda.ts gives it, and for its
// first launches the input bytes and the cpu backend's output bytes. test/unit/cuda_render.test.ts runs
// the conformance suite with it (KILN_CONFORMANCE_RECORD=<dir>, see harness.ts), then compiles the
// recorded sources with nvcc and runs them as host C++ against the recorded outputs.
// It offers no routines, so every routine's reference from primitives becomes generated kernels.
// Records go to <dir>/<pid>.jsonl, one line each, written synchronously (a killed run keeps what it had).

import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import type { Backend, BackendInfo, DeviceBuffer, Executable } from "../../src/core/backend.js";
import { itemsize } from "../../src/core/dtype.js";
import type { DType } from "../../src/core/dtype.js";
import type { KernelSpec } from "../../src/core/ir.js";
import type { RoutineName } from "../../src/core/ops.js";
import type { RoutineSpecs } from "../../src/core/routines.js";
import { CpuBackend, CpuBuffer } from "../../src/backends/cpu/backend.js";
import { renderCuda } from "../../src/backends/cuda/render_cuda.js";

/** One recorded launch (or a kernel that failed to render), as plain JSON. */
export interface KernelRecord {
  readonly test: string;
  readonly kernel: string;
  /** Set when render_cuda threw: the error's message. */
  readonly renderError?: string;
  readonly entry?: string;
  readonly code?: string;
  readonly grid?: number;
  readonly block?: number;
  readonly blockSync?: boolean;
  readonly n?: number;
  readonly reduceSize?: number;
  readonly dtypes?: readonly DType[];
  /** Base64 bytes of the input buffers (slots 1..) before the launch, and of out[0..n) after it. */
  readonly inputs?: readonly string[];
  readonly output?: string;
}

/** Launches recorded per kernel source: enough to check it, few enough to keep the records small. */
const LAUNCHES_PER_KERNEL = 2;
/** Launches with more bytes than this are not recorded (the conformance suite's largest input is ~0.5 MB). */
const MAX_LAUNCH_BYTES = 4 << 20;

interface RecordingExe extends Executable {
  readonly inner: Executable;
  readonly spec: KernelSpec;
  readonly rendered?: ReturnType<typeof renderCuda>;
}

export class RecordingBackend implements Backend {
  readonly name = "cuda" as const;
  readonly cpu = new CpuBackend();
  readonly info: BackendInfo = { name: "cuda", device: "recorder: CUDA C rendered, run on the cpu backend", details: {}, software: true };
  readonly caps = this.cpu.caps;
  private readonly file: string;
  private readonly launches = new Map<string, number>();
  constructor(dir: string) {
    this.file = join(dir, `${process.pid}.jsonl`);
  }
  alloc(n: number) { return this.cpu.alloc(n); }
  free(b: DeviceBuffer) { this.cpu.free(b); }
  view(p: DeviceBuffer, o: number, n: number) { return this.cpu.view(p, o, n); }
  write(d: DeviceBuffer, s: Uint8Array, o?: number) { this.cpu.write(d, s, o); }
  read(s: DeviceBuffer, n?: number) { return this.cpu.read(s, n); }
  async synchronize() {}
  dispose() { this.cpu.dispose(); }
  supportsRoutine<R extends RoutineName>(_name: R, _spec: RoutineSpecs[R]): boolean { return false; }
  async routine<R extends RoutineName>(name: R): Promise<Executable> {
    throw new Error(`recorder: no routine '${name}' (the tensor layer should have used its reference)`);
  }

  async compile(spec: KernelSpec): Promise<RecordingExe> {
    const inner = await this.cpu.compile(spec);
    try {
      return { name: spec.name, inner, spec, rendered: renderCuda(spec) } satisfies RecordingExe;
    } catch (err) {
      this.append({ test: testName(), kernel: spec.name, renderError: (err as Error).message });
      return { name: spec.name, inner, spec } satisfies RecordingExe;
    }
  }

  launch(exe: Executable, bufs: readonly DeviceBuffer[], scalars?: readonly number[]): void {
    const e = exe as RecordingExe;
    const r = e.rendered;
    const seen = r ? this.launches.get(r.code) ?? 0 : LAUNCHES_PER_KERNEL;
    const cbufs = bufs as readonly CpuBuffer[];
    const bytes = cbufs.reduce((s, b) => s + b.nbytes, 0);
    const record = r && seen < LAUNCHES_PER_KERNEL && bytes <= MAX_LAUNCH_BYTES && e.spec.n > 0;
    const inputs = record ? cbufs.slice(1).map((b) => b64(b, b.nbytes)) : [];
    this.cpu.launch(e.inner, bufs, scalars);
    if (!record) return;
    this.launches.set(r.code, seen + 1);
    const { spec } = e;
    this.append({
      test: testName(), kernel: spec.name, entry: r.entry, code: r.code, grid: r.grid, block: r.block, blockSync: r.blockSync,
      n: spec.n, reduceSize: spec.reduce?.size, dtypes: [spec.out, ...spec.inputs], inputs, output: b64(cbufs[0]!, spec.n * itemsize(spec.out)),
    });
  }

  private append(rec: KernelRecord): void {
    appendFileSync(this.file, `${JSON.stringify(rec)}\n`);
  }
}

const b64 = (b: CpuBuffer, nbytes: number) => Buffer.from(b.data, b.byteOffset, Math.min(nbytes, b.nbytes)).toString("base64");
const testName = () => expect.getState().currentTestName ?? "(outside a test)";
