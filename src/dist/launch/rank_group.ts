// rank_group.ts: one attempt of a launch: this node's ranks started as processes (each with its rank's
// variables, leading a process group of its own), their output prefixed with the rank, and stopped
// together when one fails (SIGTERM, SIGKILL after a grace period; at once for a rank reported hung, which
// could not act on SIGTERM). It reads the ranks' marker lines (markers.ts): a rank reported silent is named
// as the failure instead of the rank that noticed, and the first step taken is timed for the launcher's
// recovery report. Restarting and the launcher's own signals are launcher.ts's.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import type { RankEnv } from "./env.js";
import { torchrunVars } from "./env.js";
import { LinePrefixer } from "./line_prefixer.js";
import { parseMarker } from "./markers.js";

export interface GroupOptions {
  readonly program: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly graceMs: number;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly say: (line: string) => void;
  /** The first step marker of this attempt (rank and step), when it arrives. */
  readonly onFirstStep?: (step: number, at: number) => void;
}

export interface GroupResult {
  /** 0 when every rank exited 0; else the failure's code (128 + signal number if killed). */
  readonly code: number;
  /** The rank whose failure ended the attempt: the rank reported silent, if one was, else the first to fail. */
  readonly failedRank?: number;
  /** When the launcher learned of the failure (Date.now()). */
  readonly failedAt?: number;
  /** How the failure looked, for the launcher's lines ("was killed by SIGKILL", "sent no heartbeat for 3.1 s"). */
  readonly why?: string;
  /** Set when stop() ended the attempt (a signal to the launcher). */
  readonly stoppedBy?: NodeJS.Signals;
}

export function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
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

export class RankGroup {
  private readonly children: ChildProcess[] = [];
  private readonly running = new Set<number>();
  private killTimer: NodeJS.Timeout | undefined;
  private failure: { rank: number; code: number; at: number; why: string } | undefined;
  private silent: { rank: number; silentMs: number; by: number } | undefined;
  private stoppedBy: NodeJS.Signals | undefined;
  private firstStepSeen = false;
  readonly done: Promise<GroupResult>;

  constructor(private readonly ranks: readonly RankEnv[], private readonly o: GroupOptions) {
    this.done = Promise.all(ranks.map((r, i) => this.start(r, i))).then(() => this.finish());
  }

  get size(): number {
    return this.running.size;
  }

  /** Passes a signal sent to the launcher on to every rank (SIGKILL after the grace period). */
  stop(sig: NodeJS.Signals): void {
    this.stoppedBy ??= sig;
    this.stopAll(sig);
  }

  private stopAll(sig: NodeJS.Signals): void {
    for (const [i, c] of this.children.entries()) if (this.running.has(i)) signalGroup(c, sig);
    if (this.killTimer) return;
    // NOTE: SIGKILL goes to every rank's group, exited or not: a rank that exited may have left
    // children of its own behind in its group.
    this.killTimer = setTimeout(() => {
      if (this.running.size > 0) this.o.say(`${this.running.size} rank(s) still running ${this.o.graceMs} ms after ${sig}: SIGKILL`);
      for (const c of this.children) signalGroup(c, "SIGKILL");
    }, this.o.graceMs);
  }

  private fail(rank: number, code: number, why: string): void {
    if (this.failure || this.stoppedBy) return;
    this.failure = { rank, code, at: Date.now(), why };
    // NOTE: a rank reported hung is still running; it is not one of "the others".
    const others = [...this.running].filter((i) => this.ranks[i]!.rank !== rank).length;
    this.o.say(`rank ${rank} ${why}${others > 0 ? `; stopping the other ${others} rank(s) (SIGTERM, SIGKILL after ${this.o.graceMs} ms)` : ""}`);
    this.stopAll("SIGTERM");
  }

  private onLine(rank: number, line: string): boolean {
    const m = parseMarker(line);
    if (!m) return true;
    if (m.kind === "step" && !this.firstStepSeen) {
      this.firstStepSeen = true;
      this.o.onFirstStep?.(m.step, Date.now());
    } else if (m.kind === "silent" && !this.silent && !this.failure && !this.stoppedBy) {
      this.silent = { rank: m.rank, silentMs: m.silentMs, by: rank };
      // NOTE: a hung rank (SIGSTOP, a frozen host) cannot act on SIGTERM: it gets SIGKILL at once.
      const i = this.ranks.findIndex((r) => r.rank === m.rank);
      if (i >= 0) signalGroup(this.children[i]!, "SIGKILL");
      this.fail(m.rank, 1, `sent no heartbeat for ${(m.silentMs / 1000).toFixed(1)} s (hung or dead; reported by rank ${rank})`);
    }
    return false;
  }

  private start(r: RankEnv, i: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // NOTE: detached puts each rank in a process group of its own, which it leads: a stop reaches
      // the rank's children too (a `kiln` command runs its work in a child), and Ctrl-C in a terminal
      // reaches only the launcher, which passes it on once instead of every process getting it twice.
      const child = spawn(this.o.program, [...this.o.args], { env: { ...this.o.env, ...torchrunVars(r) }, stdio: ["ignore", "pipe", "pipe"], detached: true });
      this.children[i] = child;
      this.running.add(i);
      const prefix = `[rank ${r.rank}] `;
      const lineOut = new LinePrefixer(prefix, this.o.out);
      const lineErr = new LinePrefixer(prefix, this.o.err, (l) => this.onLine(r.rank, l));
      child.stdout!.setEncoding("utf8").on("data", (d: string) => lineOut.push(d));
      child.stderr!.setEncoding("utf8").on("data", (d: string) => lineErr.push(d));
      let ended = false;
      const end = (code: number, why: string) => {
        if (ended) return;
        ended = true;
        this.running.delete(i);
        if (code !== 0) this.fail(r.rank, code, why);
      };
      child.once("error", (e) => {
        // NOTE: a command that cannot start (not found, not executable) fails like a shell's 127.
        end(127, `could not start ${JSON.stringify(this.o.program)}: ${e.message}`);
        resolve();
      });
      child.once("exit", (code, signal) => end(exitCode(code, signal), signal ? `was killed by ${signal}` : `exited with code ${code}`));
      child.once("close", () => {
        lineOut.end();
        lineErr.end();
        resolve();
      });
    });
  }

  private finish(): GroupResult {
    if (this.killTimer) {
      clearTimeout(this.killTimer);
      // NOTE: after a stop, whatever the ranks started and left behind in their groups goes too.
      for (const c of this.children) signalGroup(c, "SIGKILL");
    }
    // NOTE: a rank's failure, when it came first, is the attempt's outcome even if a signal followed.
    const f = this.failure;
    if (f) return { code: f.code, failedRank: f.rank, failedAt: f.at, why: f.why };
    if (this.stoppedBy) return { code: 128 + (constants.signals[this.stoppedBy] ?? 0), stoppedBy: this.stoppedBy };
    return { code: 0 };
  }
}
