// backend.ts is the contract between the core and a device: memory, compiled kernels, launches.
// Types only. It knows nothing of ops' meaning: a backend receives rendered-ready plain data
// (KernelSpec, routine specs) and runs it. Implementations live in src/backends/*.

import type { DType } from "./dtype.js";
import type { KernelSpec } from "./ir.js";
import type { RoutineName } from "./ops.js";
import type { RoutineSpecs } from "./routines.js";

export type BackendName = "cpu" | "webgpu" | "cuda";

/** Device memory. Opaque to the core except for its size. */
export interface DeviceBuffer {
  readonly nbytes: number;
}

/** A compiled kernel or a built routine, ready to launch. */
export interface Executable {
  readonly name: string;
}

export interface BackendCaps {
  /** Dtypes this backend can store and compute with. */
  readonly dtypes: readonly DType[];
  /** Largest single buffer in bytes. */
  readonly maxBufferBytes: number;
  /** Native f16 arithmetic (WebGPU shader-f16); without it f16 is stored packed and computed in f32. */
  readonly f16Math: boolean;
  readonly subgroups: boolean;
  /**
   * Bytes a view's offset must be a multiple of (Backend.view): WebGPU binds a buffer at an offset only in
   * steps of minStorageBufferOffsetAlignment (256 bytes nearly everywhere); the cpu needs a whole element.
   * Absent: 4 (an f32).
   */
  readonly viewAlignBytes?: number;
}

/** What `kiln backends` prints: plain strings, so any UI can show it. */
export interface BackendInfo {
  readonly name: BackendName;
  readonly device: string;
  readonly details: Readonly<Record<string, string>>;
  /** A software device (SwiftShader, llvmpipe, the JS cpu backend) ranks below hardware. */
  readonly software: boolean;
}

export interface Backend {
  readonly name: BackendName;
  readonly info: BackendInfo;
  readonly caps: BackendCaps;
  alloc(nbytes: number): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  /**
   * A buffer aliasing `nbytes` of `parent` from `byteOffset` (a multiple of caps.viewAlignBytes): kernels,
   * reads and writes through it hit the parent's memory. Never freed itself: the parent's owner frees the
   * memory, and must keep the parent alive while a view is in use (graph.ts Node.viewOf does).
   */
  view(parent: DeviceBuffer, byteOffset: number, nbytes: number): DeviceBuffer;
  /** Write bytes (the dtype's little-endian layout) at a byte offset. */
  write(dst: DeviceBuffer, src: Uint8Array, offset?: number): void;
  /** Read the buffer's bytes once every launch before it has finished. The only await on the hot path. */
  read(src: DeviceBuffer, nbytes?: number): Promise<Uint8Array>;
  /** Render and compile a generated kernel; cached by its full source (a hash alone could collide). */
  compile(kernel: KernelSpec): Promise<Executable>;
  /** Whether `routine` can build this spec; the tensor layer asks before it puts a routine in a graph. */
  supportsRoutine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): boolean;
  /** Build a hand-written routine (cached); throws when supportsRoutine says no. */
  routine<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): Promise<Executable>;
  /** Enqueue a launch; launches run in the order they were enqueued. */
  launch(exe: Executable, bufs: readonly DeviceBuffer[], scalars?: readonly number[]): void;
  /** Resolve when every enqueued launch has finished; reject with the device's error if one failed. */
  synchronize(): Promise<void>;
  /** Source of a compiled kernel, for KILN_DEBUG. */
  source?(exe: Executable): string | undefined;
  dispose(): void;
}
