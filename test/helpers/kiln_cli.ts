// kiln_cli.ts: run the `kiln` command as a user does, through its launcher (bin/kiln.mjs), or any other
// command, and collect its exit code and output. Shared by the CLI tests.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const KILN_BIN = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `cmd` to its end; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runProcess(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const { timeoutMs, ...rest } = opts;
  // With timeoutMs, a hung process is killed (SIGKILL) so the test fails instead of hanging the run.
  const limit = timeoutMs === undefined ? {} : { timeout: timeoutMs, killSignal: "SIGKILL" as const };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...rest, ...limit, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `kiln ARGS...` through the launcher, with this process's environment. */
export function kiln(...args: string[]): Promise<Ran> {
  return runProcess(process.execPath, [KILN_BIN, ...args]);
}
