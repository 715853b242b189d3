// device.ts finds a GPUDevice: navigator.gpu in browsers, Dawn in Node (dawn_node.ts, loaded only there,
// once dawn_probe.ts has found an adapter in a child process). It asks for the adapter's own limits and
// the optional features kiln uses (shader-f16, subgroups), and describes the adapter (software ones rank
// below the cpu backend); peekWebgpuAdapter says which adapter it would be without making a device.
// It runs nothing on the device.
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
type DawnProbeModule = typeof import("./dawn_probe.js");

const isNode = () => !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
const browserGpu = () => (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;

/** The GPU entry point: navigator.gpu in browsers (and Deno), Dawn in Node. */
async function findGpu(): Promise<GPU> {
  const nav = browserGpu();
  if (nav) return nav;
  if (!isNode()) throw new Error("no WebGPU adapter: this browser has no navigator.gpu (WebGPU unsupported or disabled)");
  // NOTE: a computed specifier keeps bundlers from pulling Dawn (a native module) into browser builds.
  const specifier = "./dawn_node.js";
  const dawn = (await import(/* @vite-ignore */ specifier)) as DawnNode;
  return dawn.nodeGpu();
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|warp|basic render/i;

interface AdapterInfoLike {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
}

/** SwiftShader, llvmpipe and other CPU implementations (or whatever the browser calls a fallback adapter). */
const isSoftware = (info: AdapterInfoLike, fallback: boolean) => fallback || SOFTWARE.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
const adapterName = (info: AdapterInfoLike) => info.description || info.device || `${info.vendor} ${info.architecture}`.trim();

/** What WebGPU would run on here, found without making a device. */
export type AdapterPeek =
  | { readonly available: true; readonly software: boolean; readonly description: string }
  | { readonly available: false; readonly reason: string };

/**
 * Which adapter a device would get, without making one. In Node a child process asks Dawn
 * (dawn_probe.ts), so Dawn is not loaded here and its warnings do not reach this process's stderr.
 */
export async function peekWebgpuAdapter(): Promise<AdapterPeek> {
  const nav = browserGpu();
  if (!nav && isNode()) {
    const specifier = "./dawn_probe.js";
    const p = await ((await import(/* @vite-ignore */ specifier)) as DawnProbeModule).probeDawnAdapter();
    return p.ok ? { available: true, software: isSoftware(p, p.fallback), description: adapterName(p) } : { available: false, reason: p.reason };
  }
  if (!nav) return { available: false, reason: "this browser has no navigator.gpu (WebGPU unsupported or disabled)" };
  const adapter = await nav.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { available: false, reason: "navigator.gpu.requestAdapter() returned null" };
  const fallback = (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { available: true, software: isSoftware(adapter.info, fallback), description: adapterName(adapter.info) };
}

/** A device with the adapter's own limits and whichever optional features it has. */
export async function requestWebgpuDevice(options: WebgpuOptions = {}): Promise<WebgpuDevice> {
  const disabled = disabledFeatures(options);
  // NOTE: in Node, Dawn is loaded here only once a child process has found it an adapter: where there is
  // none, the reason is kiln's, and Dawn's own warnings stay in the child.
  if (!browserGpu() && isNode()) {
    const peek = await peekWebgpuAdapter();
    if (!peek.available) throw new Error(`no WebGPU adapter: ${peek.reason}`);
  }
  const gpu = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("no WebGPU adapter: requestAdapter() returned null");
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f) && usable(f, gpu));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: "kiln" });
  const info = adapter.info;
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { device, vendor: info.vendor, architecture: info.architecture, description: adapterName(info), software: isSoftware(info, fallback), features: requiredFeatures };
}
