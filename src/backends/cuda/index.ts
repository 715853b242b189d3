// The cuda backend's entry point, loaded lazily by the backend registry. The renderer exists
// (render_cuda.ts); the runtime over the native addon does not yet, so starting the backend rejects
// with the first piece this machine lacks (probe.ts), or says the runtime is what is missing.
// NOTE: browser-safe: probe.ts (Node built-ins, the native addon) is reached through a computed
// specifier, as webgpu reaches Dawn, so bundlers leave it out of browser builds.

import type { Backend } from "../../core/backend.js";

export { cudaSource, renderCuda } from "./render_cuda.js";
export type { CudaKernel } from "./render_cuda.js";
export type { CudaPiece, CudaProbe } from "./probe.js";

type ProbeModule = typeof import("./probe.js");
const isNode = () => !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;

export async function createCudaBackend(): Promise<Backend> {
  if (!isNode()) throw new Error("cuda: needs Node and the native addon; a browser has neither (use webgpu)");
  const specifier = "./probe.js";
  const probe = (await import(/* @vite-ignore */ specifier)) as ProbeModule;
  throw new Error(probe.cudaUnavailableReason(probe.probeCuda()));
}
