// dawn_probe.ts asks Dawn, in a child process, whether it has an adapter and which, before Dawn is
// loaded into this one. Dawn writes its warnings ("Couldn't load Vulkan: ...", "vkCreateInstance:
// Found no drivers!") to stderr from C++, which a Node process cannot silence in itself; in the child
// they are captured and turned into one reason in kiln's words. Node only (device.ts loads it only
// there); it does not import Dawn. An adapter found is remembered for the process.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { CHROMIUM_DIR, hasVulkanLoader, whyNoNodeAdapter } from "./vulkan_env.js";

/** What the child saw: the adapter's info, or why there is none. */
export type DawnProbe =
  | { readonly ok: true; readonly vendor: string; readonly architecture: string; readonly device: string; readonly description: string; readonly fallback: boolean }
  | { readonly ok: false; readonly reason: string };

/** NOTE: SwiftShader answers in well under a second; a driver that hangs must not hang kiln's start. */
const PROBE_TIMEOUT_MS = 20_000;

/** The child: ask Dawn for an adapter as device.ts does, print its info as one JSON line, exit at once. */
const SCRIPT = (webgpuUrl: string) => `
const { create } = await import(${JSON.stringify(webgpuUrl)});
const adapter = await create([]).requestAdapter({ powerPreference: "high-performance" });
const i = adapter?.info;
const out = i ? { ok: true, vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, fallback: i.isFallbackAdapter === true } : { ok: false };
process.stdout.write(JSON.stringify(out) + "\\n", () => process.exit(0));
`;

let probe: Promise<DawnProbe> | undefined;

/** Dawn's adapter, as a child process finds it. Never rejects. */
export function probeDawnAdapter(): Promise<DawnProbe> {
  if (!probe) {
    probe = runProbe();
    // NOTE: an adapter found is kept for the process; a failure is not, as getBackend does not cache
    // a failed start: the next call may succeed (e.g. after installing a driver).
    void probe.then((p) => {
      if (!p.ok) probe = undefined;
    });
  }
  return probe;
}

function runProbe(): Promise<DawnProbe> {
  const webgpu = pathToFileURL(createRequire(import.meta.url).resolve("webgpu")).href;
  const env = { ...process.env };
  // NOTE: as dawn_node.ts preloads chromium's Vulkan loader when the system has none, the child finds it on its path.
  if (!hasVulkanLoader() && existsSync(`${CHROMIUM_DIR}/libvulkan.so.1`)) {
    env.LD_LIBRARY_PATH = [env.LD_LIBRARY_PATH, CHROMIUM_DIR].filter(Boolean).join(":");
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT(webgpu)], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), PROBE_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `could not start a process to ask Dawn for an adapter: ${e.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let seen: { ok: boolean } | undefined;
      try {
        seen = JSON.parse(out.trim().split("\n").pop() ?? "") as { ok: boolean };
      } catch {
        // no answer: the reason is in how it ended and what Dawn wrote
      }
      if (seen?.ok) return resolve(seen as DawnProbe);
      if (signal === "SIGKILL") return resolve({ ok: false, reason: `Dawn did not answer an adapter request within ${PROBE_TIMEOUT_MS / 1000} s` });
      resolve({ ok: false, reason: explainDawnLog(err, seen ? undefined : `Dawn's process ended (${signal ?? `exit code ${code}`}) without an answer`) });
    });
  });
}

/** Why there is no adapter, in kiln's words, from what Dawn wrote to stderr (never quoted whole). */
export function explainDawnLog(log: string, crashed?: string): string {
  const loader = /Couldn't load Vulkan: (.*)/.exec(log);
  if (loader) {
    return `Dawn could not load the Vulkan loader (${loader[1]!.trim()}); install libvulkan1, or chromium (which ships one and SwiftShader)`;
  }
  const why = whyNoNodeAdapter();
  if (/Found no drivers/i.test(log)) return `the Vulkan loader found no driver; ${why}`;
  return crashed ? `${crashed}; ${why}` : why;
}
