// install_llama_cpp.mjs installs the llama.cpp peer (node-llama-cpp, prebuilt CPU binaries) into a cache
// folder OUTSIDE kiln's dependencies: `npm run peer:install`. The benchmarks find it there by absolute
// path (bench/peers/llama_cpp_location.ts); it is never in package.json, so CI and users never get it.
// The version is pinned so side-by-side figures name the llama.cpp they were measured against.
//
//   node bench/peers/install_llama_cpp.mjs         (folder: $KILN_PEER_DIR or ~/.cache/kiln-peers/node-llama-cpp)
//
// NOTE: about 725 MB installed (binaries for every platform and GPU variant ship in the package);
// it needs the npm registry once, and then runs offline (`getLlama({ gpu: false, build: "never" })`).

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const NODE_LLAMA_CPP_VERSION = "3.22.1";

const dir = process.env.KILN_PEER_DIR || join(homedir(), ".cache", "kiln-peers", "node-llama-cpp");
mkdirSync(dir, { recursive: true });
const manifest = join(dir, "package.json");
// NOTE: a package.json of its own, so npm installs here and never walks up into a project.
if (!existsSync(manifest)) writeFileSync(manifest, JSON.stringify({ name: "kiln-peer-llama-cpp", private: true }, null, 2) + "\n");
console.log(`installing node-llama-cpp@${NODE_LLAMA_CPP_VERSION} into ${dir}`);
const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--save-exact", `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`], { cwd: dir, stdio: "inherit" });
if (r.status !== 0) {
  console.error(`npm install failed (exit ${r.status ?? r.signal}) in ${dir}`);
  process.exit(1);
}
console.log(`peer installed: ${join(dir, "node_modules", "node-llama-cpp")}`);
