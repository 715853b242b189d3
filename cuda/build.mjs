// build.mjs: `npm run build:cuda`. Builds the native addon (cuda/build/Release/kiln_cuda.node) with
// node-gyp (npm's own copy; nothing is downloaded: Node's headers come from /usr/include/node or
// npm_config_nodedir). Where nvcc is absent it prints one line and exits 0: the package still installs
// and works, and `kiln backends` says the addon is not built. NOTE: nvcc is required although the addon
// has no .cu file yet, because the routines that follow it will; a build that succeeds without one now
// would fail later on the same machine. Then the routines: each cuda/routines/*.cu becomes
// cuda/build/routines/<name>.fatbin (sm_90a and sm_80 cubins, compute_90 PTX that later GPUs JIT), which the
// cuda backend loads (src/backends/cuda/cuda_routines.ts says which routine runs which kernel).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function findNvcc() {
  const candidates = process.env.NVCC
    ? [process.env.NVCC]
    : ["nvcc", join(process.env.CUDA_HOME ?? "/usr/local/cuda", "bin", "nvcc"), "/usr/local/cuda/bin/nvcc"];
  return candidates.find((c) => spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0);
}

function findNodeGyp() {
  const npmDir = process.env.npm_execpath ? join(dirname(process.env.npm_execpath), "..") : undefined;
  const candidates = [
    npmDir && join(npmDir, "node_modules", "node-gyp", "bin", "node-gyp.js"),
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  ].filter(Boolean);
  return candidates.find((c) => existsSync(c));
}

const nvcc = findNvcc();
if (!nvcc) {
  console.log(`build:cuda: skipped, no nvcc (${process.env.NVCC ? `NVCC=${process.env.NVCC} does not run` : "not on PATH, in CUDA_HOME/bin or /usr/local/cuda/bin"}); kiln works without the cuda backend`);
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) {
  console.error("build:cuda: node-gyp not found (it comes with npm: reinstall npm, or npm i -g node-gyp)");
  process.exit(1);
}
// NOTE: node-gyp downloads Node's headers unless told where they are; Debian's nodejs has them in /usr.
const nodedir = process.env.npm_config_nodedir ?? (existsSync("/usr/include/node/node_api.h") ? "/usr" : undefined);
// The addon is five translation units: two at a time halves the build where there are two cores.
const args = [gyp, "rebuild", "--jobs=2", `--directory=${here}`, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
if (r.status !== 0) {
  console.error(`build:cuda: node-gyp failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
console.log(`build:cuda: built ${join(here, "build", "Release", "kiln_cuda.node")} (nvcc: ${nvcc})`);

// NOTE: the flags match test/unit/cuda_routines.test.ts, which compiles the same files with every warning an error
// (cached): `--addon-only` skips them here (test/unit/cuda_addon.test.ts builds the addon alone).
if (process.argv.includes("--addon-only")) process.exit(0);
const GENCODE = ["-gencode", "arch=compute_90a,code=sm_90a", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=compute_90"];
const srcDir = join(here, "routines");
const outDir = join(here, "build", "routines");
mkdirSync(outDir, { recursive: true });
const sources = readdirSync(srcDir).filter((f) => f.endsWith(".cu")).sort();
/** One nvcc per file, written to a temporary name and renamed, so a failed build never leaves half a fatbin. */
function compileRoutine(file) {
  const out = join(outDir, file.replace(/\.cu$/, ".fatbin"));
  return new Promise((resolve) => {
    const p = spawn(nvcc, ["-fatbin", "-O3", ...GENCODE, "-o", `${out}.tmp`, join(srcDir, file)], { stdio: ["ignore", "inherit", "inherit"] });
    p.on("close", (code) => {
      if (code === 0) renameSync(`${out}.tmp`, out);
      resolve(code === 0 ? undefined : `${file} (nvcc exit ${code})`);
    });
    p.on("error", (e) => resolve(`${file} (${e.message})`));
  });
}
const failed = [];
const queue = [...sources];
await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), 8)) }, async () => {
  for (let f = queue.shift(); f; f = queue.shift()) {
    const why = await compileRoutine(f);
    if (why) failed.push(why);
  }
}));
if (failed.length > 0) {
  console.error(`build:cuda: routines failed to compile: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`build:cuda: built ${sources.length} routines into ${outDir}`);
