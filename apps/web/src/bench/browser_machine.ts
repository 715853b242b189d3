// browser_machine.ts describes the browser a benchmark ran in as the suite's MachineInfo (the Node CLI
// reads the OS instead: bench/lib/machine.ts). A browser tells little: its platform, thread count and a
// coarse memory hint; the tag names the adapter, so runs on two GPUs of one machine get two files.
import type { BackendInfo } from "../../../../src/web.js";
import type { MachineInfo } from "../../../../bench/lib/machine.js";
import { slug } from "../../../../bench/lib/machine.js";

interface BrowserNavigator {
  readonly userAgent: string;
  readonly hardwareConcurrency?: number;
  /** Chromium only: GiB, rounded to a power of two. */
  readonly deviceMemory?: number;
  /** Chromium only (User-Agent Client Hints). */
  readonly userAgentData?: { readonly platform?: string; readonly brands?: readonly { brand: string; version: string }[] };
}

/** "Chromium 131" from client hints, else the last product token of the user agent. */
function browserName(nav: BrowserNavigator): string {
  const brand = nav.userAgentData?.brands?.find((b) => !/not.a.brand/i.test(b.brand));
  if (brand) return `${brand.brand} ${brand.version}`;
  const m = /(HeadlessChrome|Chrome|Firefox|Edg|Safari)\/([\d.]+)/.exec(nav.userAgent);
  return m ? `${m[1]} ${m[2]}` : "unknown browser";
}

/** Short name of the device the backend ran on: the adapter for webgpu, the platform for cpu. */
function deviceName(backend: BackendInfo, os: string): string {
  if (backend.name === "cpu") return os;
  const { vendor = "", architecture = "" } = backend.details;
  return `${vendor} ${architecture}`.trim() || backend.device;
}

export function browserMachineInfo(backend: BackendInfo, nav: BrowserNavigator = navigator as BrowserNavigator): MachineInfo {
  // NOTE: the platform hint says "Linux"; the user agent's first parenthesis says "X11; Linux x86_64".
  const os = nav.userAgentData?.platform || /\(([^)]*)\)/.exec(nav.userAgent)?.[1] || "unknown OS";
  const cores = nav.hardwareConcurrency ?? 1;
  return {
    os,
    cpu: "browser",
    cores,
    memoryGiB: nav.deviceMemory ?? 0,
    node: browserName(nav),
    tag: `browser-${slug(deviceName(backend, os), 32)}`,
  };
}
