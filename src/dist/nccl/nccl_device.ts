// nccl_device.ts: the native addon's calls the nccl communicator makes (cuda/src/driver.cc and nccl.cc;
// src/backends/cuda/runtime.ts's CudaRuntime has them all), as a plain interface so src/dist needs no
// import of the backend, and the device memory the communicator stages host arrays through.

export type Handle = bigint;
export type NcclCollectiveKind = "allReduce" | "allGather" | "reduceScatter" | "broadcast";

export interface NcclDevice {
  streamCreate(): Handle;
  /** True once the stream's work is done, false while it runs (never blocks). */
  streamQuery(stream: Handle): boolean;
  streamDestroy(stream: Handle): void;
  memAlloc(nbytes: number): Handle;
  memFree(ptr: Handle): void;
  /** Pinned host memory: async copies from and to it finish without the driver staging them. */
  hostAlloc(nbytes: number): ArrayBuffer;
  copyHtoD(dst: Handle, src: ArrayBufferView | ArrayBuffer, stream: Handle): void;
  copyDtoH(dst: ArrayBufferView | ArrayBuffer, src: Handle, stream: Handle): void;
  copyDtoD(dst: Handle, src: Handle, nbytes: number, stream: Handle): void;
  ncclUniqueId(): Uint8Array;
  /** Blocks the calling thread until every rank of the communicator has called it. */
  ncclCommInit(id: Uint8Array, nranks: number, rank: number): Handle;
  ncclCommDestroy(comm: Handle): void;
  ncclCommAbort(comm: Handle): void;
  ncclCommAsyncError(comm: Handle): string;
  /** dtype and op: ncclDataType_t and ncclRedOp_t numbers (nccl_types.ts). */
  ncclCollective(kind: NcclCollectiveKind, comm: Handle, stream: Handle, send: Handle, recv: Handle, count: number, dtype: number, op?: number, root?: number): void;
  ncclSendRecv(comm: Handle, stream: Handle, ops: readonly { send: boolean; ptr: Handle; count: number; dtype: number; peer: number }[]): void;
}

/**
 * Device and pinned host buffers reused across calls, grown when a call needs more: two device buffers
 * (what a collective sends, what it receives) and two pinned host ones (host arrays copied in, results
 * copied out). One set per process; the communicators' calls take turns (nccl_comm.ts's queue).
 */
export class Staging {
  private dev: [Handle, Handle] | undefined;
  private devBytes = 0;
  private hostIn = new ArrayBuffer(0);
  private hostOut = new ArrayBuffer(0);

  constructor(private readonly device: NcclDevice) {}

  /** Device buffers of at least `bytes` each: [send, recv]. */
  deviceBuffers(bytes: number): [Handle, Handle] {
    if (!this.dev || this.devBytes < bytes) {
      this.freeDevice();
      // NOTE: grown to a power of two so a training run's slowly varying sizes do not reallocate each step.
      const n = 2 ** Math.ceil(Math.log2(Math.max(bytes, 256)));
      const send = this.device.memAlloc(n);
      try {
        this.dev = [send, this.device.memAlloc(n)];
      } catch (err) {
        this.device.memFree(send);
        throw err;
      }
      this.devBytes = n;
    }
    return this.dev;
  }

  /** `data`'s bytes in pinned memory (valid until the next call), for an async copy to the device. */
  pinnedIn(data: ArrayBufferView): Uint8Array {
    if (this.hostIn.byteLength < data.byteLength) this.hostIn = this.device.hostAlloc(2 ** Math.ceil(Math.log2(Math.max(data.byteLength, 256))));
    const view = new Uint8Array(this.hostIn, 0, data.byteLength);
    view.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return view;
  }

  /** Pinned memory of `bytes` for an async copy back from the device. */
  pinnedOut(bytes: number): Uint8Array {
    if (this.hostOut.byteLength < bytes) this.hostOut = this.device.hostAlloc(2 ** Math.ceil(Math.log2(Math.max(bytes, 256))));
    return new Uint8Array(this.hostOut, 0, bytes);
  }

  free(): void {
    this.freeDevice();
    this.hostIn = new ArrayBuffer(0);
    this.hostOut = new ArrayBuffer(0);
  }

  private freeDevice(): void {
    if (this.dev) for (const p of this.dev) this.device.memFree(p);
    this.dev = undefined;
    this.devBytes = 0;
  }
}
