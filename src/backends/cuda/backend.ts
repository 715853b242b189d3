// backend.ts: the cuda backend: the Backend contract over the native addon (runtime.ts). Generated
// kernels are rendered to CUDA C (render_cuda.ts), compiled by NVRTC for this GPU's architecture and
// cached on disk by a hash of source, options and NVRTC version (a cold process reuses earlier cubins);
// matmul goes to cuBLASLt. Everything runs in order on one stream; read() is the only wait.
// NOTE: not yet run on a GPU (none was lent while it was written): docs/cuda.md says what is checked.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Backend, BackendCaps, BackendInfo, DeviceBuffer, Executable } from "../../core/backend.js";
import { itemsize, type DType } from "../../core/dtype.js";
import type { KernelSpec } from "../../core/ir.js";
import type { RoutineName } from "../../core/ops.js";
import type { MatmulSpec, RoutineSpecs } from "../../core/routines.js";
import type { CudaRoutinePlan, RoutineArg } from "./cuda_routines.js";
import { cudaRoutinePlan, planFiles } from "./cuda_routines.js";
import { routinesDir } from "./probe.js";
import { cudaSource } from "./render_cuda.js";
import { openRuntime, type CudaRuntime, type Handle, type LtType, type OpenedRuntime } from "./runtime.js";

class CudaBuffer implements DeviceBuffer {
  constructor(readonly ptr: Handle, readonly nbytes: number, readonly parent?: CudaBuffer) {}
  freed = false;
}

interface KernelExe extends Executable {
  readonly kind: "kernel";
  readonly fn: Handle;
  readonly grid: number;
  readonly block: number;
  readonly inputs: readonly DType[];
  readonly source: string;
}
interface MatmulExe extends Executable {
  readonly kind: "matmul";
  readonly spec: MatmulSpec;
}
/** A routine of cuda/routines: its kernels, resolved, and the scratch it owns (freed at dispose). */
interface RoutineExe extends Executable {
  readonly kind: "routine";
  readonly plan: CudaRoutinePlan;
  readonly fns: readonly Handle[];
  readonly scratch: Readonly<Record<string, Handle>>;
}
type CudaExe = KernelExe | MatmulExe | RoutineExe;

const LT_TYPES: Partial<Record<DType, LtType>> = { f32: "f32", f16: "f16", bf16: "bf16" };
const WORKSPACE_BYTES = 32 << 20; // cuBLASLt's recommended workspace on Hopper

/** Where compiled cubins are kept between processes. */
export function kernelCacheDir(): string {
  return process.env.KILN_CUDA_KERNEL_CACHE ?? join(homedir(), ".cache", "kiln", "cuda-kernels");
}

/** NVRTC options for a device: sm_90a on Hopper (wgmma/TMA need the "a" target), sm_XY elsewhere. */
export function nvrtcOptions(major: number, minor: number): string[] {
  return [`-arch=sm_${major}${minor}${major === 9 && minor === 0 ? "a" : ""}`, "-std=c++17", "-default-device"];
}

export class CudaBackend implements Backend {
  readonly name = "cuda" as const;
  readonly info: BackendInfo;
  readonly caps: BackendCaps;
  private readonly rt: CudaRuntime;
  private readonly stream: Handle;
  private readonly options: string[];
  private readonly kernels = new Map<string, Promise<KernelExe>>();
  private readonly live = new Set<CudaBuffer>();
  private readonly modules: Handle[] = [];
  /** Routine fatbins loaded so far, by file. */
  private readonly routineModules = new Map<string, Handle>();
  /** Scratch of every routine executable, freed at dispose. */
  private readonly scratch: Handle[] = [];
  private readonly workspace: Handle;
  private disposed = false;

  constructor(private readonly opened: OpenedRuntime) {
    const { rt, props } = opened;
    this.rt = rt;
    this.stream = rt.streamCreate();
    this.workspace = rt.memAlloc(WORKSPACE_BYTES);
    this.options = nvrtcOptions(props.major, props.minor);
    this.info = {
      name: "cuda",
      device: props.name,
      software: false,
      details: {
        compute: `sm_${props.major}${props.minor}`, memory: `${(props.totalMemory / 2 ** 30).toFixed(1)} GiB`,
        multiprocessors: String(props.multiprocessors), driver: String(opened.driverVersion), nvrtc: opened.nvrtcVersion,
      },
    };
    this.caps = { dtypes: ["f64", "f32", "f16", "bf16", "i32", "u32", "u8", "bool"], maxBufferBytes: props.totalMemory, f16Math: true, subgroups: true, viewAlignBytes: 16 };
  }

  private alive(): void {
    if (this.disposed) throw new Error("cuda: the backend was disposed");
  }

  alloc(nbytes: number): CudaBuffer {
    this.alive();
    const b = new CudaBuffer(this.rt.memAlloc(nbytes), nbytes);
    this.live.add(b);
    return b;
  }

  free(buf: DeviceBuffer): void {
    const b = buf as CudaBuffer;
    if (b.parent) throw new Error(`cuda: free of a view (${b.nbytes} bytes): only its parent buffer is freed`);
    if (b.freed || this.disposed) return;
    // NOTE: cuMemFree waits for the device to stop using the memory, so enqueued launches stay safe.
    this.rt.memFree(b.ptr);
    b.freed = true;
    this.live.delete(b);
  }

  view(parent: DeviceBuffer, byteOffset: number, nbytes: number): CudaBuffer {
    const p = parent as CudaBuffer;
    const root = p.parent ?? p;
    if (byteOffset % 16 !== 0 || byteOffset < 0 || byteOffset + nbytes > p.nbytes) {
      throw new Error(`cuda: a view of ${nbytes} bytes at byte ${byteOffset} does not fit a ${p.nbytes}-byte buffer (offsets in multiples of 16)`);
    }
    return new CudaBuffer(p.ptr + BigInt(byteOffset), nbytes, root);
  }

  write(dst: DeviceBuffer, src: Uint8Array, offset = 0): void {
    this.alive();
    const b = dst as CudaBuffer;
    if (offset + src.byteLength > b.nbytes) throw new Error(`cuda: write of ${src.byteLength} bytes at ${offset} overflows a ${b.nbytes}-byte buffer`);
    // Pageable source: the driver stages it before returning, so the caller may reuse src at once.
    this.rt.copyHtoD(b.ptr + BigInt(offset), src, this.stream);
  }

  async read(src: DeviceBuffer, nbytes = src.nbytes): Promise<Uint8Array> {
    this.alive();
    const out = new Uint8Array(nbytes);
    // A copy to pageable memory returns when it is done, after every launch before it on the stream;
    // a failed launch's error (an illegal address) surfaces here as the JS error of this call.
    this.rt.copyDtoH(out, (src as CudaBuffer).ptr, this.stream);
    return out;
  }

  async compile(kernel: KernelSpec): Promise<KernelExe> {
    this.alive();
    const { kernel: k, source } = cudaSource(kernel);
    let exe = this.kernels.get(source);
    if (!exe) {
      exe = this.build(kernel, k.entry, source, k.grid, k.block);
      this.kernels.set(source, exe);
      exe.catch(() => this.kernels.delete(source));
    }
    return exe;
  }

  private async build(kernel: KernelSpec, entry: string, source: string, grid: number, block: number): Promise<KernelExe> {
    const image = this.cubin(source, entry);
    const mod = this.rt.moduleLoad(image);
    this.modules.push(mod);
    return { kind: "kernel", name: kernel.name, fn: this.rt.moduleFunction(mod, entry), grid, block, inputs: kernel.inputs, source };
  }

  /** NVRTC's cubin for a source, from the disk cache when an earlier process compiled it. */
  private cubin(source: string, entry: string): Uint8Array {
    const key = createHash("sha256").update(`${this.opened.nvrtcVersion}\0${this.options.join(" ")}\0${source}`).digest("hex");
    const dir = kernelCacheDir();
    const file = join(dir, `${key}.cubin`);
    if (existsSync(file)) return readFileSync(file);
    const { image } = this.rt.compile(source, `${entry}.cu`, this.options);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${file}.${process.pid}`, image);
      renameSync(`${file}.${process.pid}`, file); // atomic: a reader never sees half a file
    } catch {
      // NOTE: a read-only home only costs a recompile next time.
    }
    return image;
  }

  supportsRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): boolean {
    return this.routineReason(name, spec) === undefined;
  }

  /** Why this backend runs no routine for the spec (the graph then uses generated kernels), or undefined. */
  private routineReason<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): string | undefined {
    if (name === "matmul") {
      const s = spec as MatmulSpec;
      const ok = !s.epilogue && LT_TYPES[s.dtype] !== undefined && s.out === s.dtype && s.m > 0 && s.n > 0 && s.k > 0;
      return ok ? undefined : "cuBLASLt matmul takes f32/f16/bf16 without an epilogue, output in the input's dtype";
    }
    const plan = cudaRoutinePlan(name, spec);
    if (typeof plan === "string") return plan;
    // NOTE: without the fatbin (npm run build:cuda builds it beside the addon) the generated kernels serve.
    const missing = planFiles(plan).find((f) => !existsSync(join(routinesDir(), `${f}.fatbin`)));
    return missing === undefined ? undefined : `cuda/build/routines/${missing}.fatbin is not built (npm run build:cuda)`;
  }

  async routine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): Promise<Executable> {
    this.alive();
    const why = this.routineReason(name, spec);
    if (why) throw new Error(`cuda: routine '${name}' is not built for ${JSON.stringify(spec)}: ${why}`);
    if (name === "matmul") {
      const exe: MatmulExe = { kind: "matmul", name: "matmul", spec: spec as MatmulSpec };
      return exe;
    }
    const plan = cudaRoutinePlan(name, spec) as CudaRoutinePlan;
    const fns = plan.launches.map((l) => this.rt.moduleFunction(this.routineModule(l.file ?? plan.file), l.entry));
    const scratch: Record<string, Handle> = {};
    for (const [key, bytes] of Object.entries(plan.scratch)) {
      scratch[key] = this.rt.memAlloc(Math.max(16, bytes));
      this.scratch.push(scratch[key]!);
    }
    const exe: RoutineExe = { kind: "routine", name, plan, fns, scratch };
    return exe;
  }

  /** A routine file's fatbin, loaded once per backend. */
  private routineModule(file: string): Handle {
    let mod = this.routineModules.get(file);
    if (mod === undefined) {
      mod = this.rt.moduleLoad(readFileSync(join(routinesDir(), `${file}.fatbin`)));
      this.routineModules.set(file, mod);
      this.modules.push(mod);
    }
    return mod;
  }

  /** A routine's launches in order on the stream, its arguments typed as the kernels declare them. */
  private runRoutine(e: RoutineExe, bufs: readonly CudaBuffer[]): void {
    if (e.plan.zeroOutputBytes > 0) this.rt.memset(bufs[0]!.ptr, 0, e.plan.zeroOutputBytes, this.stream);
    e.plan.launches.forEach((l, i) => {
      const values: (bigint | number)[] = [];
      let kinds = "";
      for (const a of l.args) {
        const [v, kind] = routineArg(a, bufs, e.scratch);
        values.push(v);
        kinds += kind;
      }
      this.rt.launch(e.fns[i]!, l.grid, l.block, 0, this.stream, values, kinds);
    });
  }

  launch(exe: Executable, bufs: readonly DeviceBuffer[], _scalars?: readonly number[]): void {
    this.alive();
    const e = exe as CudaExe;
    const b = bufs as readonly CudaBuffer[];
    if (e.kind === "matmul") return this.matmul(e.spec, b);
    if (e.kind === "routine") return this.runRoutine(e, b);
    if (bufs.length !== e.inputs.length + 1) throw new Error(`cuda: kernel '${e.name}' takes ${e.inputs.length + 1} buffers, got ${bufs.length}`);
    if (e.grid === 0) return; // a grid of 0 blocks is a launch error in CUDA; there is nothing to do
    const lengths = e.inputs.map((d, i) => Math.floor(b[i + 1]!.nbytes / itemsize(d)));
    this.rt.launch(e.fn, [e.grid, 1, 1], [e.block, 1, 1], 0, this.stream, [...b.map((x) => x.ptr), ...lengths], "p".repeat(b.length) + "u".repeat(lengths.length));
  }

  /** Row-major out[m,n] = op(A) op(B) is column-major out^T = op(B)^T op(A)^T: swap operands and m/n. */
  private matmul(s: MatmulSpec, [out, a, b]: readonly CudaBuffer[]): void {
    const t = LT_TYPES[s.dtype]!;
    const size = itemsize(s.dtype);
    for (let i = 0; i < s.batch; i++) {
      this.rt.matmul({
        a: b!.ptr + BigInt(i * s.bBatchStride * size), b: a!.ptr + BigInt(i * s.aBatchStride * size), d: out!.ptr + BigInt(i * s.m * s.n * size),
        m: s.n, n: s.m, k: s.k, transA: s.transB, transB: s.transA, aType: t, bType: t, dType: t,
        workspace: this.workspace, workspaceBytes: WORKSPACE_BYTES, stream: this.stream,
      });
    }
  }

  async synchronize(): Promise<void> {
    this.alive();
    this.rt.streamSynchronize(this.stream);
  }

  source(exe: Executable): string | undefined {
    return (exe as CudaExe).kind === "kernel" ? (exe as KernelExe).source : undefined;
  }

  dispose(): void {
    if (this.disposed) return;
    this.rt.streamSynchronize(this.stream);
    for (const b of this.live) this.rt.memFree(b.ptr);
    for (const p of this.scratch) this.rt.memFree(p);
    this.rt.memFree(this.workspace);
    for (const m of this.modules) this.rt.moduleUnload(m);
    this.rt.streamDestroy(this.stream);
    this.live.clear();
    this.disposed = true;
  }
}

/** One kernel argument's value and its letter for the addon's launch (p pointer, i int, f float). */
function routineArg(a: RoutineArg, bufs: readonly CudaBuffer[], scratch: Readonly<Record<string, Handle>>): [bigint | number, string] {
  if ("buf" in a) {
    const b = bufs[a.buf];
    if (!b) throw new Error(`cuda: a routine launch names buffer ${a.buf}, but ${bufs.length} were given`);
    return [b.ptr + BigInt(a.byteOffset ?? 0), "p"];
  }
  if ("scratch" in a) return [scratch[a.scratch]!, "p"];
  if ("null" in a) return [0n, "p"];
  if ("int" in a) return [a.int, "i"];
  return [a.float, "f"];
}

export function createCudaBackendNow(): CudaBackend {
  return new CudaBackend(openRuntime());
}
