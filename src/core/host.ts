// host.ts: what the JavaScript host offers beyond the language. kiln runs in Node and in browsers
// (pages and Workers) from the same modules, so no module that a browser loads may import a Node
// built-in statically: it asks here instead, and gets undefined in a browser. It owns nothing else.

interface NodeBuiltins {
  "node:fs": typeof import("node:fs");
  "node:os": typeof import("node:os");
  "node:crypto": typeof import("node:crypto");
  "node:worker_threads": typeof import("node:worker_threads");
  "node:v8": typeof import("node:v8");
}

type ProcessLike = { getBuiltinModule?: (id: string) => unknown; version?: string };

const proc = (globalThis as { process?: ProcessLike }).process;

/** A Node built-in module, or undefined outside Node. NOTE: process.getBuiltinModule needs Node >= 20.16. */
export function nodeBuiltin<K extends keyof NodeBuiltins>(id: K): NodeBuiltins[K] | undefined {
  return proc?.getBuiltinModule?.(id) as NodeBuiltins[K] | undefined;
}

/** A Node built-in that `what` cannot do without: throws a message that says so in a browser. */
export function requireNodeBuiltin<K extends keyof NodeBuiltins>(id: K, what: string): NodeBuiltins[K] {
  const m = nodeBuiltin(id);
  if (!m) throw new Error(`${what} needs Node's ${id}, which this host (a browser?) does not have`);
  return m;
}

/** The host's CPU, for reports: its model name and how many threads it runs. */
export function hostCpu(): { model: string; threads: number; runtime: string } {
  const os = nodeBuiltin("node:os");
  if (os) {
    const cpus = os.cpus();
    return { model: cpus[0]?.model.trim() ?? "an unknown CPU", threads: cpus.length, runtime: `node ${proc?.version ?? ""}`.trim() };
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number; userAgent?: string } }).navigator;
  return { model: "the browser's CPU", threads: nav?.hardwareConcurrency ?? 1, runtime: nav?.userAgent ?? "unknown browser" };
}

/** The host's memory in bytes (Node: total RAM; a browser: navigator.deviceMemory, a coarse GiB hint, else 4 GiB). */
export function hostMemoryBytes(): number {
  const os = nodeBuiltin("node:os");
  if (os) return os.totalmem();
  const gib = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  return (gib ?? 4) * 2 ** 30;
}

/**
 * Runs `fn` on a later turn of the event loop, after pending I/O: setImmediate in Node; a
 * MessageChannel message in a browser (setTimeout(0) is clamped to 4 ms once nested).
 */
export const nextTurn: (fn: () => void) => void = (() => {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (immediate) return (fn: () => void) => void immediate(fn);
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  return (fn: () => void) => {
    queue.push(fn);
    channel.port2.postMessage(0);
  };
})();
