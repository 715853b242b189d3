// launch_train.ts: the distributed `kiln train` tests' shared parts: a tiny training config in a temp
// folder (a 2-layer GPT-2 on the first 20 KB of TinyShakespeare, checkpoints every few steps), the kiln
// command run from source without bin/kiln.mjs's extra process (so a rank's pid is the training process
// itself), the pids of a launcher's ranks read from /proc (their RANK variable), and the loss curve
// rank 0 printed (--json step events).

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { alive, killGroups } from "./launch_procs.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const MAIN = join(ROOT, "src/cli/main.ts");
/** `kiln ARGS` as argv for spawn: node with tsx, from source. */
export const kilnArgs = (...args: string[]) => ["--import", "tsx", MAIN, ...args];

export interface TinyOptions {
  readonly iters: number;
  readonly every: number;
  readonly batchSize?: number;
  readonly dim?: number;
}

/** A temp folder with input.txt and c.json; the checkpoints go to ck/ inside it. */
export function tinyTrainDir(o: TinyOptions): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-dist-train-"));
  const text = readFileSync(join(ROOT, "data/tinyshakespeare/input.txt"), "utf8").slice(0, 20_000);
  writeFileSync(join(dir, "input.txt"), text);
  const cfg = {
    model: { arch: "gpt2", nLayers: 2, nHeads: 2, dim: o.dim ?? 32, blockSize: 16 },
    data: { path: "input.txt", tokenizer: "char", valFraction: 0.1 },
    train: { batchSize: o.batchSize ?? 8, iters: o.iters, gradAccumSteps: 1, maxGradNorm: 1.0, seed: 7 },
    optimizer: { kind: "adamw", lr: 3e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 },
    schedule: { kind: "cosine", warmupSteps: 3, decaySteps: o.iters, minLr: 1e-4 },
    eval: { interval: 1000, batches: 1 },
    checkpoint: { dir: "ck", every: o.every, keepLast: 3 },
    tracking: { enabled: false },
  };
  const config = join(dir, "c.json");
  writeFileSync(config, JSON.stringify(cfg, null, 2));
  return { dir, config };
}

/** The JSON events `kiln train --json` printed, from a launcher's output (rank 0's "[rank 0] {...}" lines) or a single process's. */
export function events(stdout: string): Record<string, unknown>[] {
  return stdout.split("\n").flatMap((l) => {
    const json = l.startsWith("[rank ") ? l.slice(l.indexOf("] ") + 2) : l;
    return json.startsWith("{") ? [JSON.parse(json) as Record<string, unknown>] : [];
  });
}

/** Step -> loss, the later report winning (a resumed run repeats the steps after its checkpoint). */
export function lossCurve(stdout: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of events(stdout)) if (e.kind === "step") out.set(e.step as number, e.loss as number);
  return out;
}

/** Live processes whose parent is `ppid`, with their RANK and KILN_RESTART_COUNT variables. */
export function childRanks(ppid: number): { pid: number; rank: number; restart: number }[] {
  const out: { pid: number; rank: number; restart: number }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== ppid || fields[0] === "Z") continue;
      const env = Object.fromEntries(readFileSync(`/proc/${name}/environ`, "utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      if (env.RANK !== undefined) out.push({ pid: Number(name), rank: Number(env.RANK), restart: Number(env.KILN_RESTART_COUNT ?? 0) });
    } catch {
      // gone while we looked
    }
  }
  return out.sort((a, b) => a.rank - b.rank);
}

/** Temp folders and rank pids a test made (push to them); cleanUpLaunches (afterEach) removes and kills them. */
export const tempDirs: string[] = [];
export const rankPids = new Set<number>();

/** Kills every launched process group and rank still alive, and removes the temp folders. */
export function cleanUpLaunches(): void {
  killGroups();
  for (const p of rankPids) if (alive(p)) process.kill(p, "SIGKILL");
  rankPids.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
