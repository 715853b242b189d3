// device.ts finds a GPUDevice: navigator.gpu in browsers, Dawn in Node (dawn_node.ts, loaded only there).
// It asks for the adapter's own limits and the optional features kiln uses (shader-f16, subgroups),
// and describes the adapter (software ones rank below the cpu backend). It runs nothing on the device.

/** What the backend needs to know about the device it got. */
export interface WebgpuDevice {
  readonly device: GPUDevice;
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  /** SwiftShader, llvmpipe and other CPU implementations. */
  readonly software: boolean;
  readonly features: readonly string[];
}

/** Limits requested at the adapter's own values (the defaults are far below what GPUs offer). */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
] as const;

const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ["shader-f16", "subgroups"];

type DawnNode = typeof import("./dawn_node.js");

/** The GPU entry point: navigator.gpu in browsers (and Deno), Dawn in Node. */
async function findGpu(): Promise<{ gpu: GPU; dawn?: DawnNode }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu };
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) throw new Error("no WebGPU adapter: this browser has no navigator.gpu (WebGPU unsupported or disabled)");
  // NOTE: a computed specifier keeps bundlers from pulling Dawn (a native module) into browser builds.
  const specifier = "./dawn_node.js";
  const dawn = (await import(/* @vite-ignore */ specifier)) as DawnNode;
  return { gpu: dawn.nodeGpu(), dawn };
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|warp|basic render/i;

/** A device with the adapter's own limits and whichever optional features it has. */
export async function requestWebgpuDevice(): Promise<WebgpuDevice> {
  const { gpu, dawn } = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    const why = dawn ? dawn.whyNoNodeAdapter() : "navigator.gpu.requestAdapter() returned null";
    throw new Error(`no WebGPU adapter: ${why}`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: "kiln" });
  const info = adapter.info;
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    device,
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description || info.device || `${info.vendor} ${info.architecture}`.trim(),
    software: fallback || SOFTWARE.test(text),
    features: requiredFeatures,
  };
}
