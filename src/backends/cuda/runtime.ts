// runtime.ts: the native addon's runtime functions (cuda/src/driver.cc, nvrtc.cc, cublaslt.cc, nccl.cc)
// as a typed interface, and opening them: load the addon, then the driver, NVRTC and cuBLASLt from the
// paths probe.ts found. Handles and device pointers are BigInt (addresses); their lifetime is the
// caller's (backend.ts). NCCL is loaded on demand by whoever makes a communicator, not here: one GPU
// serves without it.

import { createRequire } from "node:module";
import { probeCuda, cudaUnavailableReason, type CudaProbe } from "./probe.js";

export type Handle = bigint;

export interface DeviceProps {
  readonly name: string;
  readonly totalMemory: number;
  readonly major: number;
  readonly minor: number;
  readonly multiprocessors: number;
  readonly maxThreadsPerBlock: number;
  readonly sharedMemoryPerBlockOptin: number;
  readonly clockRateKHz: number;
  readonly memoryClockRateKHz: number;
  readonly memoryBusWidth: number;
  readonly l2CacheBytes: number;
  readonly warpSize: number;
}

/** cuBLASLt's matmul, column-major (cublaslt.cc says what each field means). */
export interface LtMatmul {
  readonly a: Handle; readonly b: Handle; readonly d: Handle; readonly c?: Handle;
  readonly m: number; readonly n: number; readonly k: number;
  readonly lda?: number; readonly ldb?: number; readonly ldc?: number;
  readonly transA?: boolean; readonly transB?: boolean;
  readonly aType?: LtType; readonly bType?: LtType; readonly dType?: LtType;
  readonly alpha?: number; readonly beta?: number;
  readonly epilogue?: "none" | "relu" | "gelu" | "bias" | "relu_bias" | "gelu_bias";
  readonly bias?: Handle; readonly aScale?: Handle; readonly bScale?: Handle;
  readonly workspace?: Handle; readonly workspaceBytes?: number;
  readonly stream?: Handle;
}
export type LtType = "f32" | "f16" | "bf16" | "e4m3" | "e5m2";
/** ncclDataType_t and ncclRedOp_t numbers (src/dist/nccl/nccl_types.ts maps kiln's names to them). */
export type NcclTypeCode = number;
export type NcclOpCode = number;

export interface CudaRuntime {
  loadDriver(path: string): { version: number; devices: number };
  deviceProperties(ordinal: number): DeviceProps;
  context(ordinal: number): Handle;
  streamCreate(): Handle;
  streamSynchronize(stream: Handle): void;
  /** True once the stream's work is done, false while it runs (never blocks). */
  streamQuery(stream: Handle): boolean;
  streamDestroy(stream: Handle): void;
  memAlloc(nbytes: number): Handle;
  memFree(ptr: Handle): void;
  hostAlloc(nbytes: number): ArrayBuffer;
  copyHtoD(dst: Handle, src: ArrayBufferView | ArrayBuffer, stream: Handle): void;
  copyDtoH(dst: ArrayBufferView | ArrayBuffer, src: Handle, stream: Handle): void;
  copyDtoD(dst: Handle, src: Handle, nbytes: number, stream: Handle): void;
  memset(dst: Handle, byte: number, nbytes: number, stream: Handle): void;
  eventCreate(): Handle;
  eventRecord(event: Handle, stream: Handle): void;
  eventElapsed(start: Handle, end: Handle): number;
  eventDestroy(event: Handle): void;
  moduleLoad(image: Uint8Array): Handle;
  moduleFunction(module: Handle, name: string): Handle;
  moduleUnload(module: Handle): void;
  functionSetSharedBytes(fn: Handle, bytes: number): void;
  launch(fn: Handle, grid: readonly [number, number, number], block: readonly [number, number, number], sharedBytes: number, stream: Handle, args: readonly (bigint | number)[], kinds: string): void;
  captureBegin(stream: Handle): void;
  captureEnd(stream: Handle): Handle;
  graphLaunch(exec: Handle, stream: Handle): void;
  graphDestroy(exec: Handle): void;
  loadNvrtc(path: string): { major: number; minor: number };
  compile(source: string, name: string, options: readonly string[]): { image: Uint8Array; kind: "cubin" | "ptx"; log: string };
  loadCublasLt(path: string): void;
  matmul(p: LtMatmul): void;
  loadNccl(path: string): number;
  ncclUniqueId(): Uint8Array;
  ncclCommInit(id: Uint8Array, nranks: number, rank: number): Handle;
  ncclCommDestroy(comm: Handle): void;
  ncclCommAbort(comm: Handle): void;
  /** "" while healthy, else NCCL's string for the communicator's asynchronous error. */
  ncclCommAsyncError(comm: Handle): string;
  ncclCollective(kind: "allReduce" | "allGather" | "reduceScatter" | "broadcast", comm: Handle, stream: Handle, send: Handle, recv: Handle, count: number, dtype: NcclTypeCode, op?: NcclOpCode, root?: number): void;
  ncclSendRecv(comm: Handle, stream: Handle, ops: readonly { send: boolean; ptr: Handle; count: number; dtype: NcclTypeCode; peer: number }[]): void;
}

export interface OpenedRuntime {
  readonly rt: CudaRuntime;
  readonly probe: CudaProbe;
  readonly driverVersion: number;
  readonly nvrtcVersion: string;
  readonly props: DeviceProps;
}

/** Load the addon and the libraries on device 0; throws the probe's sentence where a piece is missing. */
export function openRuntime(): OpenedRuntime {
  const probe = probeCuda();
  const reason = cudaUnavailableReason(probe);
  if (reason) throw new Error(reason);
  const rt = createRequire(import.meta.url)(probe.addon.path) as CudaRuntime;
  const { version } = rt.loadDriver(probe.libraries.driver!.path!);
  const nv = rt.loadNvrtc(probe.libraries.nvrtc!.path!);
  rt.loadCublasLt(probe.libraries.cublasLt!.path!);
  rt.context(0);
  return { rt, probe, driverVersion: version, nvrtcVersion: `${nv.major}.${nv.minor}`, props: rt.deviceProperties(0) };
}
