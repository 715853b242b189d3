// launcher.ts: runs one node's share of a job, as torchrun does: N processes of a command, each with
// its rank's variables (env.ts's torchrun names), their output prefixed with the rank (rank_group.ts).
// When one rank fails (exits non-zero, is killed, or is reported hung by the others' heartbeats) the
// others are stopped; with maxRestarts > 0 every rank is then started again (a fresh rendezvous port,
// KILN_RESTART_COUNT counting up), up to maxRestarts times, and the time from the failure to the first
// step of the new attempt is reported. SIGINT/SIGTERM/SIGHUP sent to the launcher are passed on to the
// ranks and end the launch (no restart).

import { createServer } from "node:net";
import { LaunchSpecError } from "./errors.js";
import { RankGroup } from "./rank_group.js";
import type { LaunchSpec } from "./spec.js";
import { checkSpec, localRanks } from "./spec.js";

export interface LaunchOptions {
  /** The program and its arguments, run once per local rank. */
  readonly command: readonly string[];
  /** The environment the ranks start from (default process.env); the rank variables are added. */
  readonly env?: NodeJS.ProcessEnv;
  /** How long stopped ranks get between SIGTERM and SIGKILL (default 5000 ms). */
  readonly graceMs?: number;
  /** Restart every rank after a failure, up to this many times (default 0: the first failure ends the launch). */
  readonly maxRestarts?: number;
  /** Where the ranks' prefixed output and the launcher's own lines go (default this process's). */
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

/** One restart: which rank failed, and how long from the launcher learning of it to the new attempt's first step. */
export interface Recovery {
  readonly failedRank: number;
  readonly why: string;
  /** Failure to first new step (ms); undefined when the new attempt took no step. */
  readonly ms?: number;
  /** The step the new attempt took first (1-based, as `kiln train` prints it). */
  readonly step?: number;
}

export interface LaunchResult {
  /** 0 when every rank exited 0; else the failed rank's code (128 + signal number if it was killed). */
  readonly code: number;
  /** The rank whose failure ended the launch, if one did. */
  readonly failedRank?: number;
  /** The signal sent to the launcher that ended it, if one did. */
  readonly signal?: NodeJS.Signals;
  /** The last attempt's master port. */
  readonly masterPort: number;
  /** Restarts made (0 .. maxRestarts), and what each recovered from. */
  readonly restarts: number;
  readonly recoveries: readonly Recovery[];
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

/** Runs this node's ranks to their end, restarting them as asked; see the file comment. Rejects only on bad input. */
export async function launch(spec: LaunchSpec, opts: LaunchOptions): Promise<LaunchResult> {
  checkSpec(spec);
  if (opts.command.length === 0) throw new LaunchSpecError("no command to launch (give it after --)");
  const maxRestarts = opts.maxRestarts ?? 0;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) throw new LaunchSpecError(`--max-restarts ${maxRestarts} is not an integer >= 0`);
  // NOTE: a restart must restart every node's ranks together; one node's launcher cannot do that alone yet.
  if (maxRestarts > 0 && spec.nnodes > 1) throw new LaunchSpecError(`--max-restarts needs --nnodes 1 for now (got --nnodes ${spec.nnodes}): the nodes' launchers do not agree on restarts yet`);
  const out = opts.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = opts.stderr ?? ((t: string) => void process.stderr.write(t));
  const say = (line: string) => err(`kiln launch: ${line}\n`);
  const graceMs = opts.graceMs ?? 5000;
  const [program, ...args] = opts.command as [string, ...string[]];

  let group: RankGroup | undefined;
  let gotSignal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    // NOTE: Ctrl-C reaches the launcher twice when it runs under bin/kiln.mjs (the terminal's SIGINT
    // and kiln.mjs passing it on); the ranks get it once, and SIGKILL follows after the grace period.
    if (gotSignal !== undefined) return;
    gotSignal = sig;
    say(`got ${sig}: passing it on to ${group?.size ?? 0} rank(s) (SIGKILL after ${graceMs} ms)`);
    group?.stop(sig);
  };
  for (const sig of FORWARDED) process.on(sig, onSignal);

  const recoveries: Recovery[] = [];
  const done = (r: Omit<LaunchResult, "recoveries" | "restarts">, attempt: number): LaunchResult => ({ ...r, restarts: attempt, recoveries: [...recoveries] });
  /** The failure the current attempt recovers from (undefined in the first attempt). */
  let failure: { rank: number; why: string; at: number } | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      // NOTE: a fresh port per attempt (unless --master names one): the dead attempt's may linger a moment.
      let masterPort = spec.masterPort;
      if (masterPort === undefined) {
        masterPort = await freePort(spec.masterAddr);
        say(`master ${spec.masterAddr}:${masterPort} (no --master given: a free port on this host)`);
      }
      const env = { ...(opts.env ?? process.env), KILN_RESTART_COUNT: String(attempt), TORCHELASTIC_RESTART_COUNT: String(attempt), KILN_MAX_RESTARTS: String(maxRestarts) };
      const from = failure;
      if (from) recoveries.push({ failedRank: from.rank, why: from.why });
      group = new RankGroup(localRanks(spec, masterPort), {
        program, args, env, graceMs, out, err, say,
        onFirstStep: (step, at) => {
          if (!from) return;
          recoveries[recoveries.length - 1] = { failedRank: from.rank, why: from.why, ms: at - from.at, step };
          say(`recovered: the first step after restart ${attempt} (step ${step}) came ${at - from.at} ms after rank ${from.rank} failed`);
        },
      });
      if (gotSignal !== undefined) group.stop(gotSignal);
      const r = await group.done;
      if (r.failedRank === undefined) {
        const sig = r.stoppedBy ?? gotSignal;
        return done(sig === undefined ? { code: r.code, masterPort } : { code: r.code, signal: sig, masterPort }, attempt);
      }
      if (attempt >= maxRestarts || gotSignal !== undefined) {
        const tail = maxRestarts > 0 && gotSignal === undefined ? ` (restarts exhausted: ${attempt} of ${maxRestarts} made)` : "";
        say(`failed: rank ${r.failedRank} ${r.why}${tail}; exit code ${r.code}`);
        return done({ code: r.code, failedRank: r.failedRank, masterPort }, attempt);
      }
      say(`restarting all ${spec.nproc} rank(s) after rank ${r.failedRank} failed (restart ${attempt + 1} of ${maxRestarts})`);
      failure = { rank: r.failedRank, why: r.why!, at: r.failedAt! };
    }
  } finally {
    for (const sig of FORWARDED) process.off(sig, onSignal);
  }
}
