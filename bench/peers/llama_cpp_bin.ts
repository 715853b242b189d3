// llama_cpp_bin.ts: where llama.cpp's own binaries (llama-bench, llama-server) are, for the benchmarks
// that run the real tools rather than node-llama-cpp. They are never a dependency of kiln: someone builds
// them outside the repository (bench/peers/build_llama_cpp.sh), and the benchmarks look in
// $KILN_LLAMA_CPP_BIN, else ~/.cache/kiln-peers/llama.cpp/build/bin. When a binary is absent the
// benchmark prints notBuilt()'s text (what is missing, where it looked, how to build it) and exits 0.

import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export type LlamaCppTool = "llama-bench" | "llama-server";

/** The folder searched: $KILN_LLAMA_CPP_BIN, else ~/.cache/kiln-peers/llama.cpp/build/bin. */
export function llamaCppBinDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KILN_LLAMA_CPP_BIN || join(homedir(), ".cache", "kiln-peers", "llama.cpp", "build", "bin");
}

/** The tool's path when it is there and executable, else undefined. */
export function findLlamaCppTool(tool: LlamaCppTool, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = join(llamaCppBinDir(env), tool);
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** The message a benchmark prints when `tool` is absent: where it looked and the steps that build it. */
export function notBuilt(tool: LlamaCppTool, env: NodeJS.ProcessEnv = process.env): string {
  return [
    `peer: ${tool} not found in ${llamaCppBinDir(env)} (set KILN_LLAMA_CPP_BIN to the folder holding llama.cpp's binaries).`,
    "Build llama.cpp's CPU tools outside the repository (about 20 minutes on 2 cores):",
    "  bash bench/peers/build_llama_cpp.sh            # clones ngxson/llama.cpp into ~/.cache/kiln-peers/llama.cpp,",
    "                                                 # cmake Release GGML_NATIVE, targets llama-bench llama-server",
  ].join("\n");
}

/**
 * "<commit> (<date>)" of the llama.cpp checkout a binary was built from, read from the git folder two
 * levels above build/bin; "unknown commit" when that is not a git checkout (a binary copied elsewhere).
 */
export function llamaCppCommit(binPath: string): string {
  const src = dirname(dirname(dirname(binPath)));
  try {
    return execFileSync("git", ["-C", src, "log", "-1", "--format=%h (%cs)"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).trim();
  } catch {
    return "unknown commit";
  }
}
