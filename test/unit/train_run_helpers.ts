// train_run_helpers.ts: shared pieces of the `kiln train` process tests (train_resume*.test.ts): a
// tiny char-level config, running the command with --json and reading its events back, and running
// it until a condition holds on what it printed, then signalling it.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KILN_BIN, kiln } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";

export function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-resume-"));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

export const ITERS = 24;
export const tiny = (ckptDir: string, over: { dim?: number; data?: object } = {}) => ({
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: over.dim ?? 16, blockSize: 16 },
  data: over.data ?? { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
  train: { batchSize: 2, iters: ITERS },
  optimizer: { kind: "adamw", lr: 3e-3, weightDecay: 0.1 },
  schedule: { kind: "cosine", warmupSteps: 2, decaySteps: ITERS, minLr: 3e-4 },
  eval: { interval: 8, batches: 1 },
  checkpoint: { dir: ckptDir, every: 2, keepLast: 100 },
});

export function writeConfig(dir: string, name: string, cfg: unknown): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify(cfg));
  return p;
}

export type Event = { kind: string; step: number; loss?: number };
export const events = (stdout: string): Event[] => stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Event);
/** step -> loss of the training steps (and "eval@step" -> held-out loss) a run printed. */
export const losses = (evs: Event[]) => new Map(evs.filter((e) => e.kind === "step" || e.kind === "eval").map((e) => [e.kind === "step" ? String(e.step) : `eval@${e.step}`, e.loss!]));
export const after = (m: Map<string, number>, from: number) => [...m].filter(([k]) => Number(k.replace("eval@", "")) > from);

export async function train(config: string, ...flags: string[]) {
  const r = await kiln("train", "--config", config, "--backend", "cpu", "--json", ...flags);
  return { ...r, events: events(r.stdout) };
}

/**
 * Runs `kiln train` and sends `signal` once `when` holds for the events printed so far; resolves to
 * the exit code or signal and the events. SIGKILL goes to the process group (the launcher runs the
 * command in a child process: detached); SIGTERM to the launcher, which passes it on.
 */
export function trainUntil(config: string, when: (evs: Event[]) => boolean, signal: "SIGKILL" | "SIGTERM"): Promise<{ code: number | null; signal: NodeJS.Signals | null; events: Event[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN_BIN, "train", "--config", config, "--backend", "cpu", "--json"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    let sent = false;
    const complete = () => events(out.slice(0, out.lastIndexOf("\n") + 1));
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      if (sent || !when(complete())) return;
      sent = true;
      if (signal === "SIGKILL") process.kill(-child.pid!, "SIGKILL");
      else child.kill("SIGTERM");
    });
    child.on("error", reject);
    child.on("close", (code, sig) => resolve({ code, signal: sig, events: complete() }));
  });
}

