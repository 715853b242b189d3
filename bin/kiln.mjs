#!/usr/bin/env node
// kiln.mjs: the `kiln` command's launcher. It owns the environment that native code reads when a
// process starts, and which build of the command runs; the command itself (flags, subcommands) is
// src/cli/main.ts.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const env = { ...process.env };
const chromium = "/usr/lib/chromium";

// NOTE: Dawn (the `webgpu` package) reads VK_ICD_FILENAMES with C's getenv when it first looks for an
// adapter. Without a GPU this points Vulkan at SwiftShader (Debian's chromium package ships it);
// otherwise Dawn finds no driver, or only Mesa's lavapipe, which it rejects: no adapter.
if (!env.VK_ICD_FILENAMES && existsSync(`${chromium}/vk_swiftshader_icd.json`)) {
  env.VK_ICD_FILENAMES = `${chromium}/vk_swiftshader_icd.json`;
}
// NOTE: silences a harmless warning from the Vulkan loader when there is no session runtime dir.
env.XDG_RUNTIME_DIR ??= "/tmp";

// NOTE: Dawn dlopens the Vulkan loader, libvulkan.so.1. Debian's chromium ships its own copy but does
// not pull in the system one (libvulkan1). When only chromium's exists, name its directory in
// LD_LIBRARY_PATH. The dynamic linker reads LD_LIBRARY_PATH once, when a process starts, which is
// why this launcher runs the command in a child process instead of importing it here.
const loaderDirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
  "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib", ...(env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean)];
if (!loaderDirs.some((d) => existsSync(`${d}/libvulkan.so.1`)) && existsSync(`${chromium}/libvulkan.so.1`)) {
  env.LD_LIBRARY_PATH = [env.LD_LIBRARY_PATH, chromium].filter(Boolean).join(":");
}

// NOTE: an installed package has no src/, only the JavaScript that `npm run build` wrote to dist/, and
// runs that in plain node. A clone has src/ and runs it through tsx (a devDependency), so the command
// is always the code in front of you, never a dist/ left over from an earlier build. Both paths are
// resolved from this file (not from the cwd), so `npx kiln`, `npm run kiln --` and a symlinked bin work
// from any directory. One child, stdio inherited: output streams straight through, and its exit code
// (or the signal that ended it) becomes ours.
const source = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const built = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const args = existsSync(source) ? ["--import", import.meta.resolve("tsx"), source] : [built];
const child = spawn(process.execPath, [...process.execArgv, ...args, ...process.argv.slice(2)], {
  env,
  stdio: "inherit",
});

// NOTE: Ctrl-C reaches the whole process group; a `kill` aimed at this launcher alone is passed on.
const forward = (sig) => child.kill(sig);
const signals = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const sig of signals) process.on(sig, forward);

child.on("error", (err) => {
  console.error(`kiln: cannot start ${process.execPath}: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  for (const sig of signals) process.off(sig, forward);
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
