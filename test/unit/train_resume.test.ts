// Kill-and-resume of `kiln train` as a user meets it, through the launcher on cpu (issue 10's Done-when):
// a run SIGKILLed after it wrote a checkpoint, resumed with --resume, gives the uninterrupted run's
// losses bit for bit (JSON numbers round-trip the f32 losses exactly); a corrupted newest checkpoint
// is skipped with a warning and the run goes on from the one before, with the same losses; a
// checkpoint of another model config is refused; the loader's position on prepared shards
// (data.index) is part of the checkpoint. Tiny models (1 layer, 16 wide) keep each run to seconds.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KILN_BIN, kiln } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-resume-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ITERS = 24;
const tiny = (ckptDir: string, over: { dim?: number; data?: object } = {}) => ({
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: over.dim ?? 16, blockSize: 16 },
  data: over.data ?? { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
  train: { batchSize: 2, iters: ITERS },
  optimizer: { kind: "adamw", lr: 3e-3, weightDecay: 0.1 },
  schedule: { kind: "cosine", warmupSteps: 2, decaySteps: ITERS, minLr: 3e-4 },
  eval: { interval: 8, batches: 1 },
  checkpoint: { dir: ckptDir, every: 2, keepLast: 100 },
});

function writeConfig(name: string, cfg: unknown): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify(cfg));
  return p;
}

type Event = { kind: string; step: number; loss?: number };
const events = (stdout: string): Event[] => stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Event);
/** step -> loss of the training steps (and "eval@step" -> held-out loss) a run printed. */
const losses = (evs: Event[]) => new Map(evs.filter((e) => e.kind === "step" || e.kind === "eval").map((e) => [e.kind === "step" ? String(e.step) : `eval@${e.step}`, e.loss!]));
const after = (m: Map<string, number>, from: number) => [...m].filter(([k]) => Number(k.replace("eval@", "")) > from);

async function train(config: string, ...flags: string[]) {
  const r = await kiln("train", "--config", config, "--backend", "cpu", "--json", ...flags);
  return { ...r, events: events(r.stdout) };
}

/**
 * Runs `kiln train` and SIGKILLs it as soon as it reports a checkpoint on disk; resolves to what it printed.
 * NOTE: the launcher runs the command in a child process: the kill goes to the process group (detached).
 */
function trainUntilCheckpoint(config: string): Promise<{ signal: NodeJS.Signals | null; events: Event[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN_BIN, "train", "--config", config, "--backend", "cpu", "--json"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    let killed = false;
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      if (events(out.slice(0, out.lastIndexOf("\n") + 1)).some((e) => e.kind === "checkpoint") && !killed) {
        killed = true;
        process.kill(-child.pid!, "SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (_code, signal) => resolve({ signal, events: events(out.slice(0, out.lastIndexOf("\n") + 1)) }));
  });
}

describe("kiln train: kill and resume", () => {
  const straightDir = join(dir, "straight");
  let straight: Map<string, number>;

  it("a run killed after a checkpoint and resumed gives the uninterrupted losses bit for bit", async () => {
    const a = await train(writeConfig("straight", tiny(straightDir)));
    expect(a.code, a.stderr).toBe(0);
    straight = losses(a.events);
    expect(straight.size).toBe(ITERS + ITERS / 8);

    const cfg = writeConfig("killed", tiny(join(dir, "killed")));
    const killed = await trainUntilCheckpoint(cfg);
    expect(killed.signal).toBe("SIGKILL");
    const lastStep = Math.max(...killed.events.filter((e) => e.kind === "step").map((e) => e.step));
    expect(lastStep).toBeLessThan(ITERS);
    const seen = killed.events.find((e) => e.kind === "checkpoint")!.step;

    const resumed = await train(cfg, "--resume");
    expect(resumed.code, resumed.stderr).toBe(0);
    const from = resumed.events.find((e) => e.kind === "resume")!.step;
    // The killed run may have finished a later checkpoint after the one it reported.
    expect(from).toBeGreaterThanOrEqual(seen);
    const got = losses(resumed.events);
    expect(Math.min(...resumed.events.filter((e) => e.kind === "step").map((e) => e.step))).toBe(from + 1);
    expect([...got]).toEqual(after(straight, from));
    expect(got.size).toBeGreaterThan(0);
  }, 60_000);

  it("a corrupted newest checkpoint falls back to the previous one with a warning, and the curve is the same", async () => {
    expect(straight).toBeDefined();
    const newest = join(straightDir, `step-0000${ITERS}`, "model.safetensors");
    const bytes = readFileSync(newest);
    bytes[bytes.length - 5]! ^= 0x40;
    writeFileSync(newest, bytes);
    const r = await train(writeConfig("straight", tiny(straightDir)), "--resume");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`skipping .*step-0000${ITERS}, corrupted or incomplete: .*model\\.safetensors`));
    expect(r.stderr).toMatch(new RegExp(`resuming from .*step-0000${ITERS - 2} \\(step ${ITERS - 2}\\), the newest good checkpoint; 1 newer one was skipped`));
    expect(r.events.find((e) => e.kind === "resume")!.step).toBe(ITERS - 2);
    expect([...losses(r.events)]).toEqual(after(straight, ITERS - 2));
  }, 60_000);

  it("a checkpoint of another model config is refused with a clear error", async () => {
    const r = await train(writeConfig("wider", tiny(straightDir, { dim: 32 })), "--resume");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step-0000\d\d is a checkpoint of another model: shapes differ: token_embd\.weight is \[\d+, 16\] in the checkpoint, \[\d+, 32\] in the model/);
    expect(r.events.some((e) => e.kind === "step")).toBe(false);
  }, 60_000);

  it("on prepared shards (data.index) the loader's position is checkpointed: stop at step 6 and resume = straight", async () => {
    const corpus = join(dir, "corpus.txt");
    writeFileSync(corpus, readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8").slice(0, 20_000));
    const shards = join(dir, "shards");
    const prep = await kiln("data", "prepare", "--input", corpus, "--tokenizer", "char", "--out", shards, "--val-fraction", "0.1");
    expect(prep.code, prep.stderr).toBe(0);
    const data = { index: shards };
    const a = await train(writeConfig("shards_a", { ...tiny(join(dir, "shards_a"), { data }), train: { batchSize: 2, iters: 10, gradAccumSteps: 2 } }));
    expect(a.code, a.stderr).toBe(0);
    const cfgB = writeConfig("shards_b", { ...tiny(join(dir, "shards_b"), { data }), train: { batchSize: 2, iters: 10, gradAccumSteps: 2 } });
    const b1 = await train(cfgB, "--max-iters", "6");
    expect(b1.code, b1.stderr).toBe(0);
    expect(b1.events.filter((e) => e.kind === "checkpoint").map((e) => e.step)).toEqual([2, 4, 6]);
    const state = JSON.parse(readFileSync(join(dir, "shards_b", "step-000006", "state.json"), "utf8")) as { loader: { split: string; step: number } };
    expect(state.loader).toMatchObject({ split: "train", step: 12 });
    const b2 = await train(cfgB, "--resume");
    expect(b2.code, b2.stderr).toBe(0);
    const straightShards = losses(a.events);
    expect([...losses(b2.events)]).toEqual(after(straightShards, 6));
    // b1 also evaluates at its last step (6); the straight run's steps 1-6 are the same losses.
    expect([...losses(b1.events)].filter(([k]) => !k.startsWith("eval"))).toEqual([...straightShards].filter(([k]) => Number(k) <= 6));
  }, 60_000);
});
