// thread_count.ts: how many threads the cpu backend runs on. KILN_THREADS when set (KILN_CPU_THREADS is
// its older name and still read), else the host's physical cores: on Linux the distinct (package, core)
// pairs of the online CPUs in /sys, elsewhere the logical count (os.availableParallelism(), or
// navigator.hardwareConcurrency in a browser, at most BROWSER_DEFAULT_MAX). A host without an environment
// (a browser page's `threads` URL parameter) sets it with setThreadCount before the cpu backend starts.
// It owns that choice and its validation, not the pool.
// NOTE: physical, not logical: two hyperthreads of one core share its load ports, and decode is bound by
// memory bandwidth, so a second thread per core mostly adds fork/join cost.

import { nodeBuiltin } from "../../core/host.js";

/** The largest count accepted (the pool's control words are sized by it). */
export const MAX_THREADS = 256;

/** Parses a thread count given by `what` (a flag or a variable name); throws naming it when it is not one. */
export function parseThreadCount(raw: string, what: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new Error(`${what} must be an integer from 1 to ${MAX_THREADS}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Physical cores from Linux's /sys topology (distinct package:core pairs), or undefined when it cannot be read. */
export function linuxPhysicalCores(root = "/sys/devices/system/cpu"): number | undefined {
  const fs = nodeBuiltin("node:fs");
  if (!fs) return undefined;
  try {
    const cores = new Set<string>();
    for (const name of fs.readdirSync(root)) {
      if (!/^cpu\d+$/.test(name)) continue;
      const dir = `${root}/${name}`;
      // NOTE: an offline CPU has no topology (or online = 0); cpu0 often has no `online` file at all.
      if (fs.existsSync(`${dir}/online`) && fs.readFileSync(`${dir}/online`, "utf8").trim() === "0") continue;
      if (!fs.existsSync(`${dir}/topology/core_id`)) continue;
      const core = fs.readFileSync(`${dir}/topology/core_id`, "utf8").trim();
      const pkg = fs.existsSync(`${dir}/topology/physical_package_id`) ? fs.readFileSync(`${dir}/topology/physical_package_id`, "utf8").trim() : "0";
      cores.add(`${pkg}:${core}`);
    }
    return cores.size > 0 ? cores.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A browser's default at most: hardwareConcurrency counts hyperthreads and a page cannot see the physical
 * cores. NOTE: decode is bound by memory bandwidth and each thread adds fork/join cost; more threads than
 * this were never measured to help (measured on 2 cores only: docs/browser.md).
 */
export const BROWSER_DEFAULT_MAX = 8;

/** The host's logical CPUs (Node), or a browser's hardwareConcurrency capped at BROWSER_DEFAULT_MAX; at least 1. */
function logicalCpus(): number {
  const os = nodeBuiltin("node:os");
  if (os) return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, Math.min(BROWSER_DEFAULT_MAX, nav?.hardwareConcurrency ?? 1));
}

let defaultCount: number | undefined;
/** The default: physical cores where Linux says, else logical CPUs (read once per process). */
export function defaultThreadCount(): number {
  return (defaultCount ??= linuxPhysicalCores() ?? logicalCpus());
}

let set: number | undefined;
/** The last count requestedThreadCount answered (the cpu backend reads it once, when it starts). */
let answered: number | undefined;

/**
 * Sets the thread count for hosts without an environment (a browser: the demo page's `threads` URL
 * parameter), ahead of KILN_THREADS; undefined goes back to the default. Throws naming `what` when the
 * value is not a count, or when the cpu backend already runs on another count (it reads it once).
 */
export function setThreadCount(value: number | string | undefined, what = "threads"): void {
  const n = value === undefined ? undefined : parseThreadCount(String(value), what);
  const was = set;
  set = n;
  if (answered !== undefined && fromSettings() !== answered) {
    set = was;
    throw new Error(`${what}: the cpu backend already runs on ${answered} thread${answered === 1 ? "" : "s"}; set the count before it starts`);
  }
}

/**
 * The thread count asked for: setThreadCount's, else KILN_THREADS, else KILN_CPU_THREADS, else the default.
 * Says nothing about whether the host can run that many (a browser page without cross-origin isolation runs one).
 */
export function requestedThreadCount(): number {
  return (answered = fromSettings());
}

function fromSettings(): number {
  if (set !== undefined) return set;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  for (const name of ["KILN_THREADS", "KILN_CPU_THREADS"]) {
    const raw = env?.[name];
    if (raw !== undefined && raw !== "") return parseThreadCount(raw, name);
  }
  return defaultThreadCount();
}
