// probe.ts: what the cuda backend needs on this machine and which piece is missing: the native addon
// (cuda/, `npm run build:cuda`), the driver API (libcuda), NVRTC, cuBLASLt and NCCL. It owns where
// the libraries are looked for; the addon only dlopens what it is given (cuda/src/kiln_cuda.cc).
// Search order: KILN_CUDA_LIB_PATH (folders, ':'-separated), the nvidia/*/lib folders of Python
// environments (where PyTorch's wheels keep libcublasLt, libnvrtc and libnccl), the usual system folders,
// then the bare name (the dynamic loader's own search: LD_LIBRARY_PATH, ld.so.cache).

import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The addon's functions (cuda/src/kiln_cuda.cc). */
interface KilnCudaAddon {
  openFirst(candidates: readonly string[]): { path?: string; errors?: string[] };
  driverInfo(path: string): { version?: number; devices?: number; error?: string };
}

export type CudaPiece = "driver" | "nvrtc" | "cublasLt" | "nccl";

/** Each piece's library names, newest first (CUDA 13 wheels, then 12). */
export const CUDA_LIBRARIES: Readonly<Record<CudaPiece, readonly string[]>> = {
  driver: ["libcuda.so.1", "libcuda.so"],
  nvrtc: ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
  cublasLt: ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"],
  nccl: ["libnccl.so.2", "libnccl.so"],
};

export interface CudaProbe {
  /** Where the addon was looked for, and whether it loaded. */
  readonly addon: { readonly path: string; readonly error?: string };
  readonly libraries: Partial<Record<CudaPiece, { readonly path?: string; readonly error?: string }>>;
  readonly driver?: { readonly version?: number; readonly devices?: number; readonly error?: string };
  readonly searched: readonly string[];
}

const SYSTEM_DIRS = [
  "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda/targets/sbsa-linux/lib",
  "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib",
];

/** site-packages/nvidia/<pkg>/lib folders of the Python environments in the usual places. */
function pythonNvidiaDirs(): string[] {
  const roots = [process.env.VIRTUAL_ENV, process.env.CONDA_PREFIX, "/usr/local", "/usr", "/opt/conda", join(homedir(), ".local")].filter((r): r is string => !!r);
  const out: string[] = [];
  for (const root of roots) {
    const lib = join(root, "lib");
    if (!existsSync(lib)) continue;
    for (const py of readdirSync(lib).filter((d) => d.startsWith("python3"))) {
      for (const pkgs of ["site-packages", "dist-packages"]) {
        const nvidia = join(lib, py, pkgs, "nvidia");
        if (!existsSync(nvidia)) continue;
        for (const p of readdirSync(nvidia)) if (existsSync(join(nvidia, p, "lib"))) out.push(join(nvidia, p, "lib"));
      }
    }
  }
  return out;
}

export function searchDirs(): string[] {
  const env = (process.env.KILN_CUDA_LIB_PATH ?? "").split(":").filter(Boolean);
  return [...new Set([...env, ...pythonNvidiaDirs(), ...SYSTEM_DIRS])];
}

/** The addon: KILN_CUDA_ADDON, else cuda/build/Release/kiln_cuda.node of this package (from src/ or dist/). */
export function addonPath(): string {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return process.env.KILN_CUDA_ADDON ?? join(pkg, "cuda", "build", "Release", "kiln_cuda.node");
}

/** The routines' fatbins (npm run build:cuda): KILN_CUDA_ROUTINES, else cuda/build/routines of this package. */
export function routinesDir(): string {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return process.env.KILN_CUDA_ROUTINES ?? join(pkg, "cuda", "build", "routines");
}

export function probeCuda(): CudaProbe {
  const path = addonPath();
  const searched = searchDirs();
  let addon: KilnCudaAddon;
  try {
    addon = createRequire(import.meta.url)(path) as KilnCudaAddon;
  } catch (err) {
    return { addon: { path, error: (err as Error).message.split("\n")[0]! }, libraries: {}, searched };
  }
  const libraries: CudaProbe["libraries"] = {};
  for (const [piece, names] of Object.entries(CUDA_LIBRARIES) as [CudaPiece, readonly string[]][]) {
    const candidates = [...searched.flatMap((d) => names.map((n) => join(d, n)).filter(existsSync)), ...names];
    const r = addon.openFirst(candidates);
    // NOTE: the first bare name's error says the most ("libcuda.so.1: cannot open shared object file").
    libraries[piece] = r.path ? { path: r.path } : { error: r.errors?.[candidates.length - names.length] ?? "not found" };
  }
  const driverPath = libraries.driver?.path;
  return { addon: { path }, libraries, driver: driverPath ? addon.driverInfo(driverPath) : undefined, searched };
}

/** One sentence naming the first piece missing, for `kiln backends` and the registry; undefined when all are there. */
export function cudaUnavailableReason(p: CudaProbe): string | undefined {
  if (p.addon.error) {
    return `cuda: not built yet: the native addon ${p.addon.path} did not load (${p.addon.error}); run \`npm run build:cuda\` (needs nvcc)`;
  }
  const where = `searched KILN_CUDA_LIB_PATH, Python's nvidia/*/lib, ${SYSTEM_DIRS.length} system folders and the loader's path`;
  const lib = (piece: CudaPiece) => p.libraries[piece];
  if (!lib("driver")?.path) return `cuda: no NVIDIA driver: ${CUDA_LIBRARIES.driver[0]} not found (${where}; ${lib("driver")?.error})`;
  if (p.driver?.error) return `cuda: the NVIDIA driver at ${lib("driver")!.path} does not start: ${p.driver.error}`;
  if (p.driver?.devices === 0) return "cuda: the NVIDIA driver found no GPU";
  const missing = (["nvrtc", "cublasLt", "nccl"] as const).filter((k) => !lib(k)?.path);
  if (missing.length > 0) {
    return `cuda: missing ${missing.map((k) => `${k} (${CUDA_LIBRARIES[k][0]})`).join(", ")} (${where}); PyTorch's CUDA wheels carry them, or set KILN_CUDA_LIB_PATH`;
  }
  return undefined;
}
