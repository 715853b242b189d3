// The backend registry: which backends exist, how to get one, and which is best here.
// Implementations load lazily (webgpu pulls in Dawn; cuda a native addon), so importing kiln costs
// nothing for a backend that is not used. A backend that cannot start is reported with its reason.
// Auto-selection prefers hardware: cuda, then webgpu on a real GPU, then cpu; a software WebGPU
// adapter (SwiftShader, llvmpipe) ranks below cpu and is used only when asked for.

import type { Backend, BackendInfo, BackendName } from "../core/backend.js";
import { CpuBackend } from "./cpu/backend.js";

export const BACKEND_NAMES: readonly BackendName[] = ["cuda", "webgpu", "cpu"];

let cpu: CpuBackend | undefined;
const cpuBackend = (): CpuBackend => (cpu ??= new CpuBackend());

const loaders: Record<BackendName, () => Promise<Backend>> = {
  cpu: async () => cpuBackend(),
  webgpu: async () => (await import("./webgpu/index.js")).createWebgpuBackend(),
  cuda: async () => (await import("./cuda/index.js")).createCudaBackend(),
};

/** NCCL for one rank of a communicator (src/dist's nccl backend): cuda/nccl_open.ts, loaded on first use. */
export async function openNccl(localRank: number): Promise<import("./cuda/index.js").OpenedNccl> {
  return (await import("./cuda/index.js")).openNccl(localRank);
}

const instances = new Map<BackendName, Promise<Backend>>();

/** The backend of that name, started once and shared. Rejects with the reason it is unavailable. */
export function getBackend(name: BackendName): Promise<Backend> {
  if (!(name in loaders)) {
    return Promise.reject(new Error(`unknown backend '${String(name)}' (known: ${BACKEND_NAMES.join(", ")})`));
  }
  let p = instances.get(name);
  if (!p) {
    p = loaders[name]();
    instances.set(name, p);
    // A failed start is not cached: the next call may succeed (e.g. after installing a driver).
    p.catch(() => instances.delete(name));
  }
  return p;
}

export interface BackendProbe {
  readonly name: BackendName;
  readonly available: boolean;
  readonly reason?: string;
  readonly info?: BackendInfo;
}

/** Try every backend; never throws. */
export async function probeBackends(): Promise<BackendProbe[]> {
  return Promise.all(
    BACKEND_NAMES.map(async (name): Promise<BackendProbe> => {
      try {
        const b = await getBackend(name);
        return { name, available: true, info: b.info };
      } catch (err) {
        return { name, available: false, reason: (err as Error).message };
      }
    }),
  );
}

function envBackend(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.KILN_BACKEND || undefined;
}

/** A backend that auto-selection passed over, and why. */
export interface PassedOver {
  readonly name: BackendName;
  readonly reason: string;
}

export interface BackendSelection {
  readonly backend: Backend;
  /** For "auto": the backends ranked above the one chosen, each with why it was not. Empty when one was named. */
  readonly passedOver: readonly PassedOver[];
}

/**
 * The best available backend, or the one named by `name` / KILN_BACKEND, with why auto-selection
 * passed over the better-ranked ones. Naming an unavailable backend is an error (with its reason),
 * never a silent fallback.
 * NOTE: webgpu is first looked at without starting it (in Node a child process asks Dawn), so a
 * software adapter that ranks below cpu costs no device here, and Dawn's warnings stay out of stderr.
 */
export async function chooseBackend(name: BackendName | "auto" = (envBackend() as BackendName | undefined) ?? "auto"): Promise<BackendSelection> {
  if (name !== "auto") return { backend: await getBackend(name), passedOver: [] };
  const passedOver: PassedOver[] = [];
  for (const n of BACKEND_NAMES.filter((b) => b !== "cpu")) {
    const peek = n === "webgpu" ? await (await import("./webgpu/index.js")).peekWebgpuAdapter() : undefined;
    if (peek && !peek.available) {
      passedOver.push({ name: n, reason: peek.reason });
      continue;
    }
    if (peek?.software) {
      passedOver.push({ name: n, reason: `only a software adapter (${peek.description}), which ranks below cpu` });
      continue;
    }
    try {
      const b = await getBackend(n);
      if (!b.info.software) return { backend: b, passedOver };
      passedOver.push({ name: n, reason: `only a software device (${b.info.device}), which ranks below cpu` });
    } catch (err) {
      passedOver.push({ name: n, reason: (err as Error).message.replace(new RegExp(`^${n}: `), "") });
    }
  }
  return { backend: await getBackend("cpu"), passedOver };
}

/** The best available backend, or the one named by `name` / KILN_BACKEND (chooseBackend without the reasons). */
export async function selectBackend(name: BackendName | "auto" = (envBackend() as BackendName | undefined) ?? "auto"): Promise<Backend> {
  return (await chooseBackend(name)).backend;
}

let current: Backend | undefined;

/** The backend new tensors go to unless told otherwise: cpu until setDefaultBackend says else. */
export function defaultBackend(): Backend {
  return (current ??= cpuBackend());
}

export async function setDefaultBackend(name: BackendName | "auto" | Backend): Promise<Backend> {
  current = typeof name === "object" ? name : await selectBackend(name);
  return current;
}
