// `kiln train` through the launcher on cpu, the parts beside kill-and-resume (train_resume.test.ts):
// SIGTERM stops a run after its current step with a checkpoint of that step and exit status 0; on
// prepared shards (data.index, from `kiln data prepare`) with 2 micro-batches per step, stopping at
// step 6 and resuming gives the straight run's losses (the loader's position is in the checkpoint).

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kiln } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";
import { after, losses, scratch, tiny, train, trainUntil, writeConfig } from "./train_run_helpers.js";

const { dir, done } = scratch();
afterAll(done);

describe("kiln train: stopping, and resuming on prepared shards", () => {
  it("SIGTERM stops after the current step, checkpoints it and exits 0", async () => {
    const cfg = tiny(join(dir, "stopped"));
    const r = await trainUntil(writeConfig(dir, "stopped", { ...cfg, train: { ...cfg.train, iters: 1000 }, checkpoint: { ...cfg.checkpoint, every: 500 } }), (evs) => evs.some((e) => e.kind === "step" && e.step >= 3), "SIGTERM");
    expect(r.code).toBe(0);
    const last = Math.max(...r.events.filter((e) => e.kind === "step").map((e) => e.step));
    expect(last).toBeLessThan(100);
    expect(r.events.filter((e) => e.kind === "checkpoint").map((e) => e.step)).toEqual([last]);
    expect(r.events.at(-1)).toMatchObject({ kind: "done", steps: last });
  }, 60_000);

  it("on prepared shards (data.index) the loader's position is checkpointed: stop at step 6 and resume = straight", async () => {
    const corpus = join(dir, "corpus.txt");
    writeFileSync(corpus, readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8").slice(0, 20_000));
    const shards = join(dir, "shards");
    const prep = await kiln("data", "prepare", "--input", corpus, "--tokenizer", "char", "--out", shards, "--val-fraction", "0.1");
    expect(prep.code, prep.stderr).toBe(0);
    const data = { index: shards };
    const a = await train(writeConfig(dir, "shards_a", { ...tiny(join(dir, "shards_a"), { data }), train: { batchSize: 2, iters: 10, gradAccumSteps: 2 } }));
    expect(a.code, a.stderr).toBe(0);
    const cfgB = writeConfig(dir, "shards_b", { ...tiny(join(dir, "shards_b"), { data }), train: { batchSize: 2, iters: 10, gradAccumSteps: 2 } });
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
