// The cuda backend's entry point, loaded lazily by the backend registry: the backend over the native
// addon (backend.ts) where every piece is there, else a rejection naming the first piece this machine
// lacks (probe.ts).
// NOTE: browser-safe: probe.ts (Node built-ins, the native addon) is reached through a computed
// specifier, as webgpu reaches Dawn, so bundlers leave it out of browser builds.

import type { Backend } from "../../core/backend.js";

export { cudaSource, renderCuda } from "./render_cuda.js";
export type { CudaKernel } from "./render_cuda.js";
export type { CudaPiece, CudaProbe } from "./probe.js";
export type { OpenedNccl } from "./nccl_open.js";

type BackendModule = typeof import("./backend.js");
const isNode = () => !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;

export async function createCudaBackend(): Promise<Backend> {
  if (!isNode()) throw new Error("cuda: needs Node and the native addon; a browser has neither (use webgpu)");
  const specifier = "./backend.js";
  const mod = (await import(/* @vite-ignore */ specifier)) as BackendModule;
  return mod.createCudaBackendNow();
}

/** NCCL opened for one rank (nccl_open.ts), or a rejection naming every missing piece. */
export async function openNccl(localRank: number): Promise<import("./nccl_open.js").OpenedNccl> {
  if (!isNode()) throw new Error("nccl: needs Node and the native addon; a browser has neither");
  const specifier = "./nccl_open.js";
  const mod = (await import(/* @vite-ignore */ specifier)) as typeof import("./nccl_open.js");
  return mod.openNcclNow(localRank);
}
