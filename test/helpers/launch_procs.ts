// launch_procs.ts: the launcher tests' process bookkeeping: start a command with a time limit (its
// whole process group killed when the limit passes), collect its output, and tell whether a pid is
// still alive, so a test can check that no rank outlived its launcher, and clean up if one did.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Started {
  readonly child: ChildProcess;
  /** Output so far (grows while it runs). */
  readonly out: { stdout: string; stderr: string };
  readonly ended: Promise<Ended>;
}

/** Every process group started here and not yet seen to end; killGroups() ends them. */
const groups = new Set<number>();

/**
 * Starts `cmd` in a process group of its own; after `limitMs` the group gets SIGKILL and `ended`
 * rejects with the output so far. NOTE: a rank of `kiln launch` leads its own group, so it is not
 * covered here; the tests collect rank pids from the ranks' output and check them themselves.
 */
export function start(cmd: string, args: readonly string[], limitMs: number, env: NodeJS.ProcessEnv = process.env): Started {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  if (child.pid !== undefined) groups.add(child.pid);
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const ended = new Promise<Ended>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child.pid);
      reject(new Error(`${cmd} ${args.join(" ")} ran past ${limitMs} ms; output so far:\n${out.stdout}\n${out.stderr}`));
    }, limitMs);
    child.once("error", (err) => (clearTimeout(timer), reject(err)));
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) groups.delete(child.pid);
      resolve({ code, signal, ...out });
    });
  });
  return { child, out, ended };
}

export function killGroup(pgid: number | undefined): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // ESRCH: gone already.
  }
}

/** SIGKILL to every group started here that has not ended (for afterEach). */
export function killGroups(): void {
  for (const g of groups) killGroup(g);
  groups.clear();
}

/** Whether `pid` is a live process (a zombie, dead but not yet reaped, counts as dead). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // NOTE: the state follows the command name in parentheses, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive, at most `ms`; returns those still alive. */
export async function waitDead(pids: readonly number[], ms = 3000): Promise<number[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `test` holds, polling every 20 ms, at most `ms`; throws with `what` otherwise. */
export async function waitFor(test: () => boolean, ms: number, what: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!test()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
