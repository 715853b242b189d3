// launcher.ts: runs one node's share of a job, as torchrun does: N processes of a command, each with
// its rank's variables (env.ts's torchrun names), their output prefixed with the rank. When one rank
// fails the others are stopped (SIGTERM, then SIGKILL after a grace period) and the launch ends with
// that rank's exit code; SIGINT/SIGTERM/SIGHUP sent to the launcher are passed on the same way. It
// does not restart ranks or watch heartbeats (a rank that hangs keeps the launch waiting).

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { constants } from "node:os";
import { torchrunVars } from "./env.js";
import { LaunchSpecError } from "./errors.js";
import { LinePrefixer } from "./line_prefixer.js";
import type { LaunchSpec } from "./spec.js";
import { checkSpec, localRanks } from "./spec.js";

export interface LaunchOptions {
  /** The program and its arguments, run once per local rank. */
  readonly command: readonly string[];
  /** The environment the ranks start from (default process.env); the rank variables are added. */
  readonly env?: NodeJS.ProcessEnv;
  /** How long stopped ranks get between SIGTERM and SIGKILL (default 5000 ms). */
  readonly graceMs?: number;
  /** Where the ranks' prefixed output and the launcher's own lines go (default this process's). */
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

export interface LaunchResult {
  /** 0 when every rank exited 0; else the failed rank's code (128 + signal number if it was killed). */
  readonly code: number;
  /** The rank whose failure ended the launch, if one did. */
  readonly failedRank?: number;
  /** The signal sent to the launcher that ended it, if one did. */
  readonly signal?: NodeJS.Signals;
  readonly masterPort: number;
}

const FORWARDED: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** A port nothing listens on now, on `host`. NOTE: another process may take it before rank 0 does. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err) => reject(new LaunchSpecError(`cannot find a free port on ${host}: ${err.message}`)));
    server.listen(0, host, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? constants.signals[signal] ?? 0 : 0);
}

/** Signals a rank's whole process group (it leads one), so the command's own children stop too. */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** Runs this node's ranks to their end; see the file comment. Rejects only on bad input. */
export async function launch(spec: LaunchSpec, opts: LaunchOptions): Promise<LaunchResult> {
  checkSpec(spec);
  if (opts.command.length === 0) throw new LaunchSpecError("no command to launch (give it after --)");
  const out = opts.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = opts.stderr ?? ((t: string) => void process.stderr.write(t));
  const say = (line: string) => err(`kiln launch: ${line}\n`);
  const graceMs = opts.graceMs ?? 5000;

  let masterPort = spec.masterPort;
  if (masterPort === undefined) {
    masterPort = await freePort(spec.masterAddr);
    say(`master ${spec.masterAddr}:${masterPort} (no --master given: a free port on this host)`);
  }
  const ranks = localRanks(spec, masterPort);
  const [program, ...args] = opts.command as [string, ...string[]];

  let failedRank: number | undefined;
  let failedCode = 0;
  let gotSignal: NodeJS.Signals | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const children: ChildProcess[] = [];
  const running = new Set<number>();

  const stopAll = (sig: NodeJS.Signals) => {
    for (const [i, c] of children.entries()) if (running.has(i)) signalGroup(c, sig);
    if (killTimer) return;
    // NOTE: SIGKILL goes to every rank's group, exited or not: a rank that exited may have left
    // children of its own behind in its group.
    killTimer = setTimeout(() => {
      if (running.size > 0) say(`${running.size} rank(s) still running ${graceMs} ms after ${sig}: SIGKILL`);
      for (const c of children) signalGroup(c, "SIGKILL");
    }, graceMs);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    // NOTE: Ctrl-C reaches the launcher twice when it runs under bin/kiln.mjs (the terminal's SIGINT
    // and kiln.mjs passing it on); the ranks get it once, and SIGKILL follows after the grace period.
    if (gotSignal !== undefined) return;
    gotSignal = sig;
    say(`got ${sig}: passing it on to ${running.size} rank(s) (SIGKILL after ${graceMs} ms)`);
    stopAll(sig);
  };
  for (const sig of FORWARDED) process.on(sig, onSignal);

  const closed = ranks.map((r, i) => new Promise<void>((resolve) => {
    // NOTE: detached puts each rank in a process group of its own, which it leads: a stop reaches
    // the rank's children too (a `kiln` command runs its work in a child), and Ctrl-C in a terminal
    // reaches only the launcher, which passes it on once instead of every process getting it twice.
    const child = spawn(program, args, { env: { ...(opts.env ?? process.env), ...torchrunVars(r) }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    children.push(child);
    running.add(i);
    const prefix = `[rank ${r.rank}] `;
    const lineOut = new LinePrefixer(prefix, out);
    const lineErr = new LinePrefixer(prefix, err);
    child.stdout!.setEncoding("utf8").on("data", (d: string) => lineOut.push(d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => lineErr.push(d));
    let ended = false;
    const finish = (code: number, why: string) => {
      if (ended) return;
      ended = true;
      running.delete(i);
      if (code !== 0 && failedRank === undefined && gotSignal === undefined) {
        failedRank = r.rank;
        failedCode = code;
        const others = running.size;
        say(`rank ${r.rank} ${why}${others > 0 ? `; stopping the other ${others} rank(s) (SIGTERM, SIGKILL after ${graceMs} ms)` : ""}`);
        stopAll("SIGTERM");
      }
    };
    child.once("error", (e) => {
      // NOTE: a command that cannot start (not found, not executable) fails like a shell's 127.
      finish(127, `could not start ${JSON.stringify(program)}: ${e.message}`);
      resolve();
    });
    child.once("exit", (code, signal) => finish(exitCode(code, signal), signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once("close", () => {
      lineOut.end();
      lineErr.end();
      resolve();
    });
  }));

  try {
    await Promise.all(closed);
  } finally {
    for (const sig of FORWARDED) process.off(sig, onSignal);
    if (killTimer) {
      clearTimeout(killTimer);
      // NOTE: after a stop, whatever the ranks started and left behind in their groups goes too.
      for (const c of children) signalGroup(c, "SIGKILL");
    }
  }
  // NOTE: a rank's failure, when it came first, is the launch's outcome even if a signal followed.
  if (failedRank !== undefined) {
    say(`failed: rank ${failedRank} exited with code ${failedCode}`);
    return { code: failedCode, failedRank, masterPort };
  }
  if (gotSignal !== undefined) return { code: 128 + (constants.signals[gotSignal] ?? 0), signal: gotSignal, masterPort };
  return { code: 0, masterPort };
}
