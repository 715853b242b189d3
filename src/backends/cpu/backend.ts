// The cpu backend: buffers are ArrayBuffers, kernels are JS functions rendered by render_js.ts,
// routines are the hand-written ones in routines/. Always available; launches run synchronously.
// NOTE: buffers of SHARED_MIN_BYTES or more live in the matmul kernel's shared wasm memory (its resident heap,
// wasm/resident_heap.ts) where there is one, so the kernels read them in place; else, with worker threads,
// they are SharedArrayBuffers of their own, so the threads can read a weight in place (each sent it once);
// smaller ones stay ArrayBuffers (cheaper to allocate, and too small to split).

import type { Backend, BackendCaps, BackendInfo, DeviceBuffer, Executable } from "../../core/backend.js";
import type { DType } from "../../core/dtype.js";
import { ALL_DTYPES, itemsize } from "../../core/dtype.js";
import type { KernelSpec } from "../../core/ir.js";
import type { RoutineName } from "../../core/ops.js";
import type { RoutineSpecs } from "../../core/routines.js";
import { compileWithHelpers } from "./kernel_helpers.js";
import { matmulThreadCount } from "./wasm/matmul_threads.js";
import { hasMatmulKernel, matmulKernel } from "./wasm/matmul_kernel.js";
import type { ResidentHeap } from "./wasm/resident_heap.js";
import { residentHeap } from "./wasm/resident_heap.js";
import { renderJs } from "./render_js.js";
import { compileWasmElementwise, wasmKernelsEnabled } from "./wasm/wasm_elementwise.js";
import { buildCpuRoutine, supportsCpuRoutine } from "./routines.js";
import { hostCpu } from "../../core/host.js";

/** Bytes from which an allocation is shared with the worker threads (when there are any). */
export const SHARED_MIN_BYTES = 64 << 10;
let shareLarge: boolean | undefined;
let heapOf: ResidentHeap | undefined | null;

/** The resident heap, once the kernel exists (created here on the first large allocation). */
function heap(): ResidentHeap | undefined {
  if (heapOf === undefined) {
    if (hasMatmulKernel()) matmulKernel();
    heapOf = residentHeap() ?? null;
  }
  return heapOf ?? undefined;
}

/**
 * A resident block goes back to the heap when the buffer that owns it is unreachable. NOTE: not on
 * backend.free(): views (and graph nodes sharing a buffer) may still read it after their owner frees it,
 * and a freed block is zeroed and reused at once. A view holds its parent (CpuBuffer.parent), so the block
 * outlives every view; a typed array handed out by view() holds only the memory, so callers keep the buffer.
 */
const released = new FinalizationRegistry<{ heap: ResidentHeap; addr: number }>(({ heap, addr }) => heap.release(addr));

export class CpuBuffer implements DeviceBuffer {
  readonly data: ArrayBuffer | SharedArrayBuffer;
  /** Where this buffer starts in `data`: 0 for an allocation of its own, its wasm address when resident, the offset of a view (Backend.view). */
  readonly byteOffset: number;
  /** Bytes of `data` from byteOffset this buffer may use (nbytes rounded up to 8). */
  readonly span: number;
  private readonly isView: boolean;
  private readonly views = new Map<string, ArrayBufferView>();
  constructor(readonly nbytes: number, readonly parent?: CpuBuffer, byteOffset = 0) {
    // Rounded up to 8 bytes so an f64 view always fits.
    const bytes = Math.ceil(nbytes / 8) * 8;
    this.isView = parent !== undefined;
    if (parent) {
      this.data = parent.data;
      this.byteOffset = parent.byteOffset + byteOffset;
      this.span = parent.span - byteOffset;
      return;
    }
    const h = bytes >= SHARED_MIN_BYTES ? heap() : undefined;
    const addr = h?.alloc(bytes);
    if (h && addr !== undefined) {
      this.data = h.sab();
      this.byteOffset = addr;
      released.register(this, { heap: h, addr });
    } else {
      shareLarge ??= matmulThreadCount() > 1;
      this.data = shareLarge && bytes >= SHARED_MIN_BYTES ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
      this.byteOffset = 0;
    }
    this.span = bytes;
  }
  /** A typed-array view for a dtype (f16/bf16 as raw u16 bits), cached. */
  view(dtype: DType): ArrayBufferView {
    let v = this.views.get(dtype);
    if (!v) this.views.set(dtype, (v = this.isView ? this.window(dtype) : typedView(this.data, dtype, this.byteOffset, Math.floor(this.span / itemsize(dtype)))));
    return v;
  }
  /** A view's typed array covers its own elements only, so a kernel cannot reach past it into the parent's. */
  private window(dtype: DType): ArrayBufferView {
    const size = itemsize(dtype);
    if (this.byteOffset % size !== 0) throw new Error(`cpu: a view at byte ${this.byteOffset} cannot be read as ${dtype} (${size}-byte elements)`);
    return typedView(this.data, dtype, this.byteOffset, Math.min(Math.ceil(this.nbytes / size), Math.floor(this.span / size)));
  }
}

export function typedView(buf: ArrayBufferLike, dtype: DType, byteOffset = 0, length?: number): ArrayBufferView {
  switch (dtype) {
    case "f64": return new Float64Array(buf, byteOffset, length ?? (buf.byteLength - byteOffset) >> 3);
    case "f32": return new Float32Array(buf, byteOffset, length ?? (buf.byteLength - byteOffset) >> 2);
    case "i32": return new Int32Array(buf, byteOffset, length ?? (buf.byteLength - byteOffset) >> 2);
    case "u32": return new Uint32Array(buf, byteOffset, length ?? (buf.byteLength - byteOffset) >> 2);
    case "f16": case "bf16": return new Uint16Array(buf, byteOffset, length ?? (buf.byteLength - byteOffset) >> 1);
    case "u8": case "bool": return new Uint8Array(buf, byteOffset, length ?? buf.byteLength - byteOffset);
  }
}

/** A cpu executable: a function over the buffers' views, in slot order. */
export interface CpuExecutable extends Executable {
  readonly source: string;
  readonly dtypes: readonly DType[];
  run(views: ArrayBufferView[], bufs: readonly CpuBuffer[], scalars: readonly number[]): void;
}

function cpuInfo(): BackendInfo {
  const { model, threads, runtime } = hostCpu();
  return { name: "cpu", device: `JavaScript on ${model}`, details: { threads: String(matmulThreadCount()), logicalCpus: String(threads), runtime, wasmSimd: String(hasWasmSimd()) }, software: true };
}

export class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  readonly info: BackendInfo = cpuInfo();
  readonly caps: BackendCaps = { dtypes: ALL_DTYPES, maxBufferBytes: 2 ** 31 - 1, f16Math: false, subgroups: false, viewAlignBytes: 4 };
  private readonly cache = new Map<string, CpuExecutable>();

  alloc(nbytes: number): CpuBuffer {
    if (!(nbytes >= 0) || nbytes > this.caps.maxBufferBytes) {
      throw new Error(`cpu: cannot allocate ${nbytes} bytes (limit ${this.caps.maxBufferBytes})`);
    }
    return new CpuBuffer(nbytes);
  }
  view(parent: DeviceBuffer, byteOffset: number, nbytes: number): CpuBuffer {
    if (!(parent instanceof CpuBuffer)) throw new Error("cpu: view of a buffer of another backend");
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0 || !Number.isInteger(nbytes) || nbytes < 0 || byteOffset + nbytes > parent.nbytes) {
      throw new Error(`cpu: a view of ${nbytes} bytes at byte ${byteOffset} does not fit a ${parent.nbytes}-byte buffer (offsets in multiples of 4)`);
    }
    return new CpuBuffer(nbytes, parent, byteOffset);
  }
  free(_buf: DeviceBuffer): void {
    // NOTE: ArrayBuffers are garbage-collected; nothing to release.
  }
  write(dst: DeviceBuffer, src: Uint8Array, offset = 0): void {
    const d = dst as CpuBuffer;
    if (offset + src.byteLength > d.nbytes) {
      throw new Error(`cpu: write of ${src.byteLength} bytes at ${offset} overflows a ${d.nbytes}-byte buffer`);
    }
    new Uint8Array(d.data, d.byteOffset + offset, src.byteLength).set(src);
  }
  async read(src: DeviceBuffer, nbytes = src.nbytes): Promise<Uint8Array> {
    const s = src as CpuBuffer;
    // NOTE: a copy into a plain ArrayBuffer: callers may transfer it, or decode it (a browser's TextDecoder refuses shared memory).
    const out = new Uint8Array(Math.min(nbytes, s.span));
    out.set(new Uint8Array(s.data, s.byteOffset, out.byteLength));
    return out;
  }
  async compile(kernel: KernelSpec): Promise<CpuExecutable> {
    const source = renderJs(kernel);
    // NOTE: one JS source serves any dtypes with the same typed-array semantics, but the views
    // it is launched with differ, so the dtypes are part of the key. The key is the whole text, not
    // a hash of it: two sources that collided in a hash would otherwise share one function.
    const dtypes = [kernel.out, ...kernel.inputs];
    const key = `${dtypes.join(",")}\n${source}`;
    let exe = this.cache.get(key);
    if (!exe) {
      const fn = compileWithHelpers<(...v: ArrayBufferView[]) => void>(source);
      const wasm = wasmKernelsEnabled() ? compileWasmElementwise(kernel) : undefined;
      if (wasm && "kernel" in wasm) {
        // The JS stays the kernel's spec and runs the launches the wasm one declines (see wasm_elementwise.ts).
        const w = wasm.kernel;
        const note = `// ${kernel.name}: wasm simd (f32x4); the JS below is its spec and runs launches it declines\n`;
        exe = { name: kernel.name, source: note + source, dtypes, run: (views) => void (w.run(views) || fn(...views)) };
      } else {
        exe = { name: kernel.name, source, dtypes, run: (views) => fn(...views) };
      }
      this.cache.set(key, exe);
    }
    return exe;
  }
  supportsRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): boolean {
    return supportsCpuRoutine(name, spec);
  }
  async routine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): Promise<Executable> {
    return buildCpuRoutine(name, spec);
  }
  launch(exe: Executable, bufs: readonly DeviceBuffer[], scalars: readonly number[] = []): void {
    const e = exe as CpuExecutable;
    const cbufs = bufs as readonly CpuBuffer[];
    const views = cbufs.map((b, i) => b.view(e.dtypes[i]!));
    e.run(views, cbufs, scalars);
  }
  async synchronize(): Promise<void> {}
  source(exe: Executable): string | undefined {
    return (exe as CpuExecutable).source;
  }
  dispose(): void {
    this.cache.clear();
  }
}

function hasWasmSimd(): boolean {
  // The smallest module that uses a v128 value: validates only where SIMD is supported.
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  try { return WebAssembly.validate(bytes); } catch { return false; }
}
