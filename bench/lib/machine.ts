// machine.ts describes the host a benchmark ran on (OS, CPU, cores, Node) as plain data, and derives
// a short tag for result file names. It does not describe backends (their BackendInfo does).
// NOTE: the browser's benchmark page bundles this module (MachineInfo, slug), so Node's built-ins come
// through host.ts; machineInfo() itself is for Node (the page describes a browser in apps/web).

import { nodeBuiltin, requireNodeBuiltin } from "../../src/core/host.js";

export interface MachineInfo {
  /** Distribution name when known, then kernel and architecture. */
  readonly os: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  /** Short name used in result file names (from --tag, or made from the CPU model and core count). */
  readonly tag: string;
}

function distribution(): string | undefined {
  try {
    const text = nodeBuiltin("node:fs")?.readFileSync("/etc/os-release", "utf8") ?? "";
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1];
  } catch {
    return undefined; // NOTE: not Linux, or a minimal container: the kernel name below still says what it is.
  }
}

/** Lower-case words of the CPU model without trademarks, frequency and filler, joined by dashes. */
export function slug(text: string, maxLength = 24): string {
  const cleaned = text
    .replace(/\((r|tm)\)/gi, "")
    .replace(/@.*$/, "")
    .replace(/\b(cpu|processor|\d+-core)\b/gi, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return cleaned.slice(0, maxLength).replace(/-+$/, "") || "unknown";
}

export function machineInfo(tag?: string): MachineInfo {
  const os = requireNodeBuiltin("node:os", "machineInfo()");
  const cpus = os.cpus();
  const cpu = cpus[0]?.model.trim() || "unknown CPU";
  const cores = cpus.length;
  const kernel = `${os.type()} ${os.release()} ${os.arch()}`;
  const dist = distribution();
  return {
    os: dist ? `${dist} (${kernel})` : kernel,
    cpu,
    cores,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    tag: tag ? slug(tag, 48) : `${slug(cpu)}-${cores}c`,
  };
}
