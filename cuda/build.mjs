// build.mjs: `npm run build:cuda`. Builds the native addon (cuda/build/Release/kiln_cuda.node) with
// node-gyp (npm's own copy; nothing is downloaded: Node's headers come from /usr/include/node or
// npm_config_nodedir). Where nvcc is absent it prints one line and exits 0: the package still installs
// and works, and `kiln backends` says the addon is not built. NOTE: nvcc is required although the addon
// has no .cu file yet, because the routines that follow it will; a build that succeeds without one now
// would fail later on the same machine.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
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
