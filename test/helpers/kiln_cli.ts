// kiln_cli.ts: run the `kiln` command as a user does, through its launcher (bin/kiln.mjs), and
// collect its exit code and output. Shared by the CLI tests.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const KILN_BIN = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));

export function kiln(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
