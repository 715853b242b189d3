// dist_elastic.test.ts: elastic resize through distributed checkpoints
// (train/checkpoint/sharded_checkpoint_reader.ts, train/trainer_sharded_checkpoint.ts), with real parts: ranks
// are real OS processes (dist_zero_child.ts) on the `local` communicator, the shards real files. 4 ranks
// (ZeRO-2) train 8 steps and checkpoint at steps 4 and 6; resumed from step 4 on 2 ranks (ZeRO-1: the newer
// step 6 has a damaged shard, which the rank that hashes it finds, so every rank falls back to step 4), on 8
// ranks (ZeRO-2) and in one process (no sharding), each starting from another seed, the loss curve of steps
// 4-7 and the final parameters equal the uninterrupted 4-rank run's within TOL, and each rank read only its
// part's bytes (not the shard files); a checkpoint of another model layout is refused, naming the difference.
// Every child is killed in afterEach, also when a test fails; each has its own 180 s bound too (the multi-rank tests take 240 s: CPU time is 10-20 s each on 2 idle cores, but this shared machine ran them at load 20-80).

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { verifyCheckpoint } from "../../src/train/checkpoint/index.js";
import { Trainer } from "../../src/train/trainer.js";
import { loadShardedCheckpoint } from "../../src/train/trainer_sharded_checkpoint.js";
import { trainerOptions, zeroRun } from "./dist_zero_setup.js";
import { killRanks, maxDiff, runRanks } from "./dist_zero_ranks.js";

afterEach(killRanks);
const tmp = mkdtempSync(join(tmpdir(), "kiln-dist-elastic-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Against the uninterrupted 4-rank run: a resumed run continues from the same bytes, and differs only in how
 * its world size orders the gradient's f32 sums (and the norm's). Measured (cpu, 2026-12-07) max |difference|
 * over steps 4-7: on 2 ranks loss 1.2e-7, parameters 5.6e-6; on 8: 6e-8, 7.1e-6; one process: 6e-8, 4.2e-6.
 * The bounds leave >10x room; a resume that loses the optimizer's moments (fresh m, v), the step (bias
 * correction) or a part of the parameters misses them by far.
 */
const TOL = { loss: 2e-6, param: 1e-4 };

const mean = (outs: { losses: number[] }[]) => outs[0]!.losses.map((_, i) => outs.reduce((s, o) => s + o.losses[i]!, 0) / outs.length);

describe("elastic resize: a checkpoint of 4 ranks resumes on 2, 8 and 1", () => {
  const root = join(tmp, "elastic");
  let full: Awaited<ReturnType<typeof runRanks>> | undefined;

  it("4 ranks (ZeRO-2) train 8 steps and save at steps 4 and 6: each checkpoint holds 4 shards and verifies", async () => {
    full = await runRanks(4, () => ({ ZR_STEPS: "8", ZR_STAGE: "2", ZR_CKPT: root, ZR_SAVE_AT: "4,6" }));
    expect(verifyCheckpoint(join(root, "step-000006"))).toMatchObject({ ok: true, step: 6 });
    const dir = join(root, "step-000004");
    expect(verifyCheckpoint(dir)).toMatchObject({ ok: true, step: 4 });
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    expect(manifest.shards).toBe(4);
    expect(Object.keys(manifest.files).sort()).toEqual(["shard-00000-of-00004.safetensors", "shard-00001-of-00004.safetensors", "shard-00002-of-00004.safetensors", "shard-00003-of-00004.safetensors", "state.json"]);
  }, 240_000);

  for (const { size, stage } of [
    { size: 2, stage: 1 },
    { size: 8, stage: 2 },
  ]) {
    it(`resumed on ${size} ranks (ZeRO-${stage}): the loss curve and parameters of the uninterrupted run`, async () => {
      expect(full).toBeDefined();
      // 2 ranks: step 6's shard 2 damaged (the manifest lists state.json then shards 0-3: file 3, rank 3 % 2 = 1
      // hashes it); 8 ranks: step 6 left out.
      const mine = join(tmp, `resume-${size}`);
      cpSync(root, mine, { recursive: true });
      if (size === 2) {
        const shard = join(mine, "step-000006", "shard-00002-of-00004.safetensors");
        const bytes = readFileSync(shard);
        bytes[bytes.length - 1]! ^= 1;
        writeFileSync(shard, bytes);
      } else rmSync(join(mine, "step-000006"), { recursive: true });
      const outs = await runRanks(size, () => ({ ZR_STEPS: "8", ZR_STAGE: String(stage), ZR_CKPT: mine, ZR_RESUME: "1", ZR_SEED: "99" }));
      if (size === 2) {
        expect(outs[1]!.warnings!.join("\n")).toMatch(/skipping \S+step-000006, corrupted or incomplete \(rank 1 found\): shard-00002-of-00004\.safetensors: sha256/);
        expect(outs[0]!.warnings).toEqual([]);
      }
      const shardBytes = readdirSync(join(root, "step-000004")).filter((n) => n.startsWith("shard-")).reduce((s, n) => s + readFileSync(join(root, "step-000004", n)).length, 0);
      for (const o of outs) {
        expect(o.resumedFrom).toBe(4);
        expect(o.sha).toBe(outs[0]!.sha);
        // Only its part: params, m and v of its range (4 bytes each), plus the headers of the shards it opened.
        const part = 3 * 4 * (o.range![1] - o.range![0]);
        expect(o.bytesRead!).toBeGreaterThanOrEqual(part);
        expect(o.bytesRead!).toBeLessThan(part + 4 * 300);
        expect(o.bytesRead!).toBeLessThan(shardBytes / 2 + 4 * 300);
      }
      const diffs = { loss: maxDiff(mean(outs), mean(full!).slice(4)), param: maxDiff(outs[0]!.params, full![0]!.params) };
      console.log(`resumed on ${size} ranks: max |difference| to the uninterrupted 4-rank run`, diffs);
      expect(diffs.loss).toBeLessThan(TOL.loss);
      expect(diffs.param).toBeLessThan(TOL.param);
    }, 240_000);
  }

  it("resumed in one process (no sharding): the same, reading the whole of every array once", async () => {
    expect(full).toBeDefined();
    const { model, global } = await zeroRun(await getBackend("cpu"), 99);
    const t = new Trainer(model, global, trainerOptions(1));
    const r = await loadShardedCheckpoint(join(root, "step-000004"), t, "gpt2");
    expect(r).toMatchObject({ step: 4, writtenBy: 4 });
    const losses: number[] = [];
    while (t.step < 8) losses.push((await t.trainStep()).loss);
    const diffs = { loss: maxDiff(losses, mean(full!).slice(4)), param: maxDiff(Array.from((await t.state()).params), full![0]!.params) };
    console.log("resumed in one process: max |difference| to the uninterrupted 4-rank run", diffs);
    expect(diffs.loss).toBeLessThan(TOL.loss);
    expect(diffs.param).toBeLessThan(TOL.param);
  }, 60_000);

  it("a checkpoint of another model layout is refused, naming the difference", async () => {
    expect(full).toBeDefined();
    const { model, global } = await zeroRun(await getBackend("cpu"), 4, 32);
    const t = new Trainer(model, global, trainerOptions(1));
    await expect(loadShardedCheckpoint(join(root, "step-000004"), t, "gpt2")).rejects.toThrow(/is a checkpoint of another model: shapes differ: \S+ is \[\d+(, \d+)*\] in the checkpoint, \[\d+(, \d+)*\] in the model/);
    await expect(loadShardedCheckpoint(join(root, "step-000004"), t, "llama")).rejects.toThrow("architecture is 'gpt2', the model is 'llama'");
  }, 60_000);
});
