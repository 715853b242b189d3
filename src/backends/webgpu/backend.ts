// The webgpu backend's runtime: buffers (pooled GPU storage buffers), compiled pipelines (cached by
// WGSL source), launches batched into command buffers, reads through staging buffers, and errors
// (error scopes, device loss) surfaced as thrown Errors. Kernels are rendered by render_wgsl.ts and
// routines built by routines.ts; the device comes from device.ts.

import type { Backend, BackendCaps, BackendInfo, DeviceBuffer, Executable } from "../../core/backend.js";
import { ALL_DTYPES } from "../../core/dtype.js";
import type { KernelSpec } from "../../core/ir.js";
import type { RoutineName } from "../../core/ops.js";
import type { RoutineSpecs } from "../../core/routines.js";
import { BufferPool } from "./buffer_pool.js";
import type { WebgpuDevice } from "./device.js";
import { MaskedWriter, splitWrite } from "./masked_write.js";
import { renderWgsl } from "./render_wgsl.js";
import { buildWebgpuRoutine, supportsWebgpuRoutine } from "./routines.js";

export class WebgpuBuffer implements DeviceBuffer {
  /** Undefined once freed. */
  constructor(readonly nbytes: number, public gpu: GPUBuffer | undefined) {}
}

/** A range of another buffer (Backend.view): bound at its offset; its memory is the parent's. */
export class WebgpuView implements DeviceBuffer {
  constructor(readonly nbytes: number, readonly parent: WebgpuBuffer, readonly offset: number) {}
}

/** Where a buffer's bytes are: a GPU buffer and a byte range of it. */
interface Range {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}

export interface WebgpuExecutable extends Executable {
  readonly source: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly dispatch: readonly [number, number, number];
  /** How many buffers a launch binds, for generated kernels (routines bind what they are given). */
  readonly slots?: number;
  /** A routine's slot that must be the output's own buffer (written in place): not bound, read through slot 0. */
  readonly inPlaceSlot?: number;
}

/** Launches recorded before a submit: batching saves submits; bounding it keeps the GPU fed. */
const FLUSH_EVERY = 64;
const ERROR_FILTERS: readonly GPUErrorFilter[] = ["validation", "out-of-memory", "internal"];
const round4 = (n: number) => Math.ceil(n / 4) * 4;

export class WebgpuBackend implements Backend {
  readonly name = "webgpu" as const;
  readonly info: BackendInfo;
  readonly caps: BackendCaps;
  private readonly device: GPUDevice;
  private readonly pool: BufferPool;
  private readonly masked: MaskedWriter;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly kernelLayouts = new Map<number, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private encoder: GPUCommandEncoder | undefined;
  private launches = 0;
  /** Buffers to destroy once the commands recorded so far are submitted. */
  private toDestroy: GPUBuffer[] = [];
  /** Error scopes closed at submits and not settled yet; the first error they caught waits for read or synchronize. */
  private readonly scopes = new Set<Promise<void>>();
  private firstError: Error | undefined;
  private dead: string | undefined;
  private readonly deadSignal: Promise<never>;
  private kill!: (message: string) => void;

  constructor(d: WebgpuDevice) {
    this.device = d.device;
    const limits = d.device.limits;
    this.caps = {
      dtypes: ALL_DTYPES.filter((t) => t !== "f64"),
      maxBufferBytes: Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize),
      f16Math: d.features.includes("shader-f16"),
      subgroups: d.features.includes("subgroups"),
      viewAlignBytes: limits.minStorageBufferOffsetAlignment,
    };
    this.info = {
      name: "webgpu",
      device: d.description,
      details: {
        vendor: d.vendor,
        architecture: d.architecture,
        features: d.features.join(", ") || "none",
        maxBufferSize: String(limits.maxBufferSize),
        maxStorageBufferBindingSize: String(limits.maxStorageBufferBindingSize),
        maxComputeInvocationsPerWorkgroup: String(limits.maxComputeInvocationsPerWorkgroup),
        maxComputeWorkgroupStorageSize: String(limits.maxComputeWorkgroupStorageSize),
      },
      software: d.software,
    };
    this.pool = new BufferPool(this.device, this.caps.maxBufferBytes);
    this.masked = new MaskedWriter(this.device);
    this.deadSignal = new Promise<never>((_, reject) => {
      this.kill = (message) => {
        if (this.dead) return;
        this.dead = message;
        reject(new Error(message));
      };
    });
    this.deadSignal.catch(() => {}); // NOTE: observed only through whenAlive(); never an unhandled rejection
    void this.device.lost.then((info) => this.kill(`webgpu: device lost (${info.reason}${info.message ? `: ${info.message}` : ""})`));
    for (const f of ERROR_FILTERS) this.device.pushErrorScope(f);
  }

  alloc(nbytes: number): WebgpuBuffer {
    this.alive();
    if (!Number.isInteger(nbytes) || nbytes < 0 || nbytes > this.caps.maxBufferBytes) {
      const l = this.device.limits;
      const limit = l.maxStorageBufferBindingSize <= l.maxBufferSize ? "maxStorageBufferBindingSize" : "maxBufferSize";
      throw new Error(`webgpu: cannot allocate a buffer of ${nbytes} bytes: over this adapter's ${limit} of ${this.caps.maxBufferBytes} bytes`);
    }
    const { buffer, reused } = this.pool.acquire(nbytes);
    // NOTE: new buffers are zeroed, like the cpu backend's; a reused one is cleared in command order.
    if (reused) this.record().clearBuffer(buffer);
    return new WebgpuBuffer(nbytes, buffer);
  }

  view(parent: DeviceBuffer, byteOffset: number, nbytes: number): WebgpuView {
    if (parent instanceof WebgpuView) return this.view(parent.parent, parent.offset + byteOffset, nbytes);
    this.gpuOf(parent, "view");
    const align = this.caps.viewAlignBytes ?? 4;
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % align !== 0 || !Number.isInteger(nbytes) || nbytes < 0 || byteOffset + nbytes > parent.nbytes) {
      throw new Error(`webgpu: a view of ${nbytes} bytes at byte ${byteOffset} does not fit a ${parent.nbytes}-byte buffer (offsets in multiples of minStorageBufferOffsetAlignment, ${align})`);
    }
    return new WebgpuView(nbytes, parent as WebgpuBuffer, byteOffset);
  }

  free(buf: DeviceBuffer): void {
    if (buf instanceof WebgpuView) throw new Error(`webgpu: free of a view (${buf.nbytes} bytes at ${buf.offset}): only its parent buffer is freed`);
    const b = buf as WebgpuBuffer;
    const gpu = this.gpuOf(b, "free");
    b.gpu = undefined;
    if (this.dead) return;
    const spilled = this.pool.release(gpu);
    if (spilled) this.destroyAfterSubmit(spilled);
  }

  write(dst: DeviceBuffer, src: Uint8Array, offset = 0): void {
    this.alive();
    if (dst instanceof WebgpuView) {
      if (!Number.isInteger(offset) || offset < 0 || offset + src.byteLength > dst.nbytes) {
        throw new Error(`webgpu: write of ${src.byteLength} bytes at ${offset} overflows a ${dst.nbytes}-byte view`);
      }
      // NOTE: the parent's write merges a partial last word, so bytes after the view's end are kept.
      return this.write(dst.parent, src, dst.offset + offset);
    }
    const gpu = this.gpuOf(dst, "write");
    if (!Number.isInteger(offset) || offset < 0 || offset + src.byteLength > dst.nbytes) {
      throw new Error(`webgpu: write of ${src.byteLength} bytes at ${offset} overflows a ${dst.nbytes}-byte buffer`);
    }
    if (src.byteLength === 0) return;
    let data = src;
    // NOTE: the bytes after a buffer's last byte, to the end of its word, are padding: zeros there save a merge.
    if (offset + src.byteLength === dst.nbytes && dst.nbytes % 4 !== 0) {
      (data = new Uint8Array(src.byteLength + 4 - (dst.nbytes % 4))).set(src);
    }
    const { wordOffset, whole, partial } = splitWrite(offset, data);
    if (whole.byteLength > 0) this.writeWords(gpu, wordOffset, whole);
    if (partial.length > 0) this.destroyAfterSubmit(this.masked.record(this.record(), gpu, partial));
  }

  async read(src: DeviceBuffer, nbytes = src.nbytes): Promise<Uint8Array> {
    this.alive();
    const { buffer: gpu, offset } = this.rangeOf(src, "read");
    if (!Number.isInteger(nbytes) || nbytes < 0 || nbytes > src.nbytes) {
      throw new Error(`webgpu: cannot read ${nbytes} bytes of a ${src.nbytes}-byte buffer`);
    }
    const size = round4(nbytes);
    const staging = this.device.createBuffer({ size: Math.max(size, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (size > 0) this.record().copyBufferToBuffer(gpu, offset, staging, 0, size);
    this.flush();
    try {
      await this.whenAlive(staging.mapAsync(GPUMapMode.READ));
      await this.throwErrors();
      return new Uint8Array(staging.getMappedRange(0, size).slice(0, nbytes));
    } finally {
      staging.destroy();
    }
  }

  async compile(kernel: KernelSpec): Promise<WebgpuExecutable> {
    this.alive();
    const { code, workgroups } = renderWgsl(kernel, this.caps);
    const slots = 1 + kernel.inputs.length;
    const max = this.device.limits.maxStorageBuffersPerShaderStage;
    if (slots > max) throw new Error(`webgpu: kernel '${kernel.name}' binds ${slots} buffers; this device allows ${max} per shader`);
    const layout = this.kernelLayout(slots);
    const pipeline = await this.pipeline(code, kernel.name, layout.pipeline);
    return { name: kernel.name, source: code, pipeline, layout: layout.group, dispatch: this.grid(workgroups, kernel.name), slots };
  }

  supportsRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): boolean {
    return supportsWebgpuRoutine(name, spec, this.caps);
  }

  async routine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): Promise<WebgpuExecutable> {
    this.alive();
    if (!this.supportsRoutine(name, spec)) throw new Error(`webgpu: routine '${name}' cannot build this spec on this device`);
    const r = buildWebgpuRoutine(name, spec, this.caps);
    const pipeline = await this.pipeline(r.code, r.name, "auto");
    const exe = { name: r.name, source: r.code, pipeline, layout: pipeline.getBindGroupLayout(0), dispatch: r.dispatch };
    return r.inPlaceSlot === undefined ? exe : { ...exe, inPlaceSlot: r.inPlaceSlot };
  }

  // NOTE: generated kernels have their sizes baked into the source and routines read none, so `scalars`
  // (per-launch uniforms) is not used yet.
  launch(exe: Executable, bufs: readonly DeviceBuffer[], _scalars?: readonly number[]): void {
    this.alive();
    const e = exe as WebgpuExecutable;
    if (e.slots !== undefined && bufs.length !== e.slots) {
      throw new Error(`webgpu: kernel '${e.name}' takes ${e.slots} buffers, got ${bufs.length}`);
    }
    const ranges = bufs.map((b) => this.rangeOf(b, `launch of '${e.name}'`));
    const out = ranges[0];
    const inPlace = e.inPlaceSlot;
    if (inPlace !== undefined && !(ranges[inPlace]?.buffer === out?.buffer && ranges[inPlace]?.offset === out?.offset)) {
      throw new Error(`webgpu: routine '${e.name}' writes slot ${inPlace} in place, so it must be the output's buffer (slot 0)`);
    }
    if (e.dispatch.includes(0)) return;
    const encoder = this.record();
    // NOTE: WebGPU forbids binding the written buffer a second time in one dispatch, at any range (a
    // buffer is one subresource for usage validation). An input in the output's buffer (the output itself,
    // or a view of the same parent) is read from a copy of its range taken before the launch (so every
    // element reads the old values), except a routine's in-place slot, read through slot 0 and not bound.
    const aliased = (i: number) => i > 0 && i !== inPlace && out !== undefined && ranges[i]!.buffer === out.buffer;
    if (out && ranges.some((_, i) => aliased(i))) {
      const copies = new Map<string, Range & { readonly whole: boolean }>();
      for (let i = 1; i < ranges.length; i++) {
        if (!aliased(i)) continue;
        const r = ranges[i]!;
        const key = `${r.offset}:${r.size}`;
        let c = copies.get(key);
        if (!c) {
          const copy = this.pool.acquire(r.size).buffer;
          encoder.copyBufferToBuffer(r.buffer, r.offset, copy, 0, r.size);
          copies.set(key, (c = { buffer: copy, offset: 0, size: r.size, whole: false }));
        }
        ranges[i] = c;
      }
      for (const c of copies.values()) {
        const spilled = this.pool.release(c.buffer);
        if (spilled) this.destroyAfterSubmit(spilled);
      }
    }
    const bindGroup = this.device.createBindGroup({
      layout: e.layout,
      entries: ranges.flatMap((r, binding) => (binding === inPlace ? [] : [{ binding, resource: r.whole ? { buffer: r.buffer } : { buffer: r.buffer, offset: r.offset, size: r.size } }])),
      label: e.name,
    });
    const pass = encoder.beginComputePass({ label: e.name });
    pass.setPipeline(e.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...e.dispatch);
    pass.end();
    if (++this.launches >= FLUSH_EVERY) this.flush();
  }

  async synchronize(): Promise<void> {
    this.alive();
    this.flush();
    await this.whenAlive(this.device.queue.onSubmittedWorkDone());
    await this.throwErrors();
  }

  source(exe: Executable): string | undefined {
    return (exe as WebgpuExecutable).source;
  }

  dispose(): void {
    if (this.dead) return;
    this.kill("webgpu: backend disposed");
    this.encoder = undefined;
    this.pool.destroyAll();
    this.pipelines.clear();
    this.device.destroy();
  }

  // ---- internals ----

  private alive(): void {
    if (this.dead) throw new Error(this.dead);
  }

  /** `p`, or the device-lost (or disposed) error if that comes first: nothing awaits a dead device forever. */
  private async whenAlive<T>(p: Promise<T>): Promise<T> {
    try {
      return await Promise.race([p, this.deadSignal]);
    } catch (err) {
      // NOTE: Dawn may reject a pending map before it reports the loss that caused it; wait a moment for the reason.
      await Promise.race([this.deadSignal, new Promise((resolve) => setTimeout(resolve, 50))]).catch(() => {});
      throw this.dead ? new Error(this.dead) : err;
    }
  }

  /** The GPU buffer and byte range a buffer or view binds (`whole`: the buffer as allocated, bound without a range). */
  private rangeOf(buf: DeviceBuffer, what: string): Range & { readonly whole: boolean } {
    if (buf instanceof WebgpuView) {
      if (!buf.parent.gpu) throw new Error(`webgpu: ${what} used a view (${buf.nbytes} bytes at ${buf.offset}) of a freed buffer`);
      return { buffer: buf.parent.gpu, offset: buf.offset, size: Math.max(round4(buf.nbytes), 4), whole: false };
    }
    const gpu = this.gpuOf(buf, what);
    return { buffer: gpu, offset: 0, size: gpu.size, whole: true };
  }

  private gpuOf(buf: DeviceBuffer, what: string): GPUBuffer {
    if (!(buf instanceof WebgpuBuffer)) throw new Error(`webgpu: ${what} got a buffer of another backend`);
    if (!buf.gpu) throw new Error(`webgpu: ${what} used a freed buffer (${buf.nbytes} bytes)`);
    return buf.gpu;
  }

  private record(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder({ label: "kiln" }));
  }

  /** Writes whole words at a 4-byte-aligned offset, after everything recorded so far. */
  private writeWords(gpu: GPUBuffer, offset: number, data: Uint8Array): void {
    if (!this.encoder) {
      this.device.queue.writeBuffer(gpu, offset, data as Uint8Array<ArrayBuffer>);
      return;
    }
    // NOTE: queue.writeBuffer would land before the launches recorded but not submitted yet; a copy
    // recorded in the same encoder keeps program order without a submit.
    const staging = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(data);
    staging.unmap();
    this.encoder.copyBufferToBuffer(staging, 0, gpu, offset, data.byteLength);
    this.destroyAfterSubmit(staging);
  }

  private destroyAfterSubmit(buffer: GPUBuffer): void {
    if (this.encoder) this.toDestroy.push(buffer);
    else buffer.destroy();
  }

  /** Submits what was recorded and closes this batch's error scopes (opening the next batch's). */
  private flush(): void {
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = undefined;
      this.launches = 0;
    }
    for (const b of this.toDestroy.splice(0)) b.destroy();
    for (const filter of [...ERROR_FILTERS].reverse()) {
      const scope: Promise<void> = this.device.popErrorScope().then(
        (error) => {
          if (error) this.firstError ??= new Error(`webgpu: ${filter} error: ${error.message}`);
        },
        () => {}, // NOTE: rejects only once the device is lost, which every call reports by itself
      ).finally(() => this.scopes.delete(scope));
      this.scopes.add(scope);
    }
    for (const f of ERROR_FILTERS) this.device.pushErrorScope(f);
  }

  /** Waits for the error scopes closed so far and throws the first error they caught (once). */
  private async throwErrors(): Promise<void> {
    await this.whenAlive(Promise.all(this.scopes));
    const error = this.firstError;
    this.firstError = undefined;
    if (error) throw error;
  }

  private kernelLayout(slots: number): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let l = this.kernelLayouts.get(slots);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = Array.from({ length: slots }, (_, i) => ({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: i === 0 ? "storage" : "read-only-storage" },
      }));
      const group = this.device.createBindGroupLayout({ entries, label: `kiln ${slots} slots` });
      l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.kernelLayouts.set(slots, l);
    }
    return l;
  }

  /** The compute pipeline for a WGSL source, created once; a source that does not compile rejects naming `name`. */
  private pipeline(code: string, name: string, layout: GPUPipelineLayout | "auto"): Promise<GPUComputePipeline> {
    // NOTE: keyed by the whole source, never a hash of it, so a hit is the same program. The layout is
    // part of the key: a kernel's explicit layout follows from its bindings, which its source declares,
    // but a routine's is derived ("auto"), and the two must not share a pipeline.
    const key = `${layout === "auto" ? "auto" : "explicit"}\n${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.createPipeline(code, name, layout);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async createPipeline(code: string, name: string, layout: GPUPipelineLayout | "auto"): Promise<GPUComputePipeline> {
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code, label: name });
    const pipeline = this.device.createComputePipeline({ layout, compute: { module }, label: name });
    const [error, info] = await this.whenAlive(Promise.all([this.device.popErrorScope(), module.getCompilationInfo()]));
    if (error) {
      const messages = info.messages.filter((m) => m.type === "error").map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}`);
      const numbered = code.split("\n").map((l, i) => `${String(i + 1).padStart(4)}  ${l}`).join("\n");
      throw new Error(`webgpu: '${name}' failed to compile: ${messages.join("; ") || error.message}\n${numbered}`);
    }
    return pipeline;
  }

  /** Folds a workgroup count into a grid within the per-dimension limit; shaders read it back as one index. */
  private grid(workgroups: number, name: string): [number, number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups <= max) return [workgroups, 1, 1];
    const y = Math.ceil(workgroups / max);
    if (y > max) throw new Error(`webgpu: kernel '${name}' needs ${workgroups} workgroups, over ${max}^2`);
    return [Math.ceil(workgroups / y), y, 1];
  }
}
