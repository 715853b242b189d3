// device.ts finds a GPUDevice: navigator.gpu in browsers, Dawn in Node (dawn_node.ts, loaded only there).
// It asks for the adapter's own limits and the optional features kiln uses (shader-f16, subgroups),
// and describes the adapter (software ones rank below the cpu backend). It runs nothing on the device.
// Features can be turned off (to test or compare the paths without them) with the option
// `disableFeatures` or the env var KILN_WEBGPU_DISABLE (comma-separated, e.g. `subgroups,shader-f16`).

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

/** The optional features kiln uses where the adapter has them. */
export const OPTIONAL_FEATURES = ["shader-f16", "subgroups"] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

export interface WebgpuOptions {
  /** Optional features not to request even where the adapter has them (added to KILN_WEBGPU_DISABLE's). */
  readonly disableFeatures?: readonly OptionalFeature[];
}

/** The features turned off by the option and by KILN_WEBGPU_DISABLE; an unknown name throws. */
function disabledFeatures(options: WebgpuOptions): Set<string> {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_WEBGPU_DISABLE ?? "";
  const names = [...(options.disableFeatures ?? []), ...env.split(",").map((x) => x.trim()).filter(Boolean)];
  for (const n of names) {
    if (!(OPTIONAL_FEATURES as readonly string[]).includes(n)) {
      throw new Error(`webgpu: cannot disable feature '${n}': kiln's optional features are ${OPTIONAL_FEATURES.join(", ")}`);
    }
  }
  return new Set(names);
}

/**
 * NOTE: kiln's subgroup reductions put each subgroup's partial result in a shared slot indexed by the
 * `subgroup_id` builtin (WGSL language feature `subgroup_id`), which assumes nothing about how
 * invocations map to subgroups; without that builtin, subgroups are not requested.
 */
function usable(f: OptionalFeature, gpu: GPU): boolean {
  const lang = (gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  return f !== "subgroups" || lang?.has("subgroup_id") === true;
}

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
export async function requestWebgpuDevice(options: WebgpuOptions = {}): Promise<WebgpuDevice> {
  const disabled = disabledFeatures(options);
  const { gpu, dawn } = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    const why = dawn ? dawn.whyNoNodeAdapter() : "navigator.gpu.requestAdapter() returned null";
    throw new Error(`no WebGPU adapter: ${why}`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f) && usable(f, gpu));
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
