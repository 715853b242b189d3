// train_checkpoint_faults.test.ts: what happens to checkpoints when things go wrong. A flipped byte,
// a truncated or missing file or a broken manifest is reported by verifyCheckpoint naming the file, and
// a resume falls back to the previous good checkpoint with a warning naming the one skipped and why; a
// full disk (injected ENOSPC, and a real 1 MiB tmpfs where this host lets us mount one) ends the save
// with a "disk full" error, no half-written folder and the previous checkpoint intact; a process
// SIGKILLed mid-write leaves only a temp folder, which resume ignores and cleanup removes; a
// checkpoint of another model is refused naming the difference; a failed replace of a same-step
// checkpoint puts the old one back.

import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import {
  Checkpointer,
  CheckpointError,
  latestGoodCheckpoint,
  loadCheckpoint,
  modelSignature,
  nodeCheckpointFs,
  removePartialWrites,
  resumeFromLatest,
  verifyCheckpoint,
  writeCheckpoint,
} from "../../src/train/checkpoint/index.js";
import type { CheckpointFs } from "../../src/train/checkpoint/index.js";
import { fullDiskFs, scratch, tinyState } from "./train_checkpoint_helpers.js";
import { missingReason } from "../helpers/skip_reasons.js";

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});
function root(): string {
  const s = scratch();
  cleanup.push(s.done);
  return s.dir;
}

/** Flips one bit of the byte at `at` (from the end when negative). */
function flipByte(path: string, at: number): void {
  const data = readFileSync(path);
  data[at < 0 ? data.length + at : at]! ^= 0x01;
  writeFileSync(path, data);
}

async function twoCheckpoints(): Promise<string> {
  const dir = root();
  await writeCheckpoint(dir, tinyState(100));
  await writeCheckpoint(dir, tinyState(200));
  return dir;
}

describe("a damaged checkpoint", () => {
  it("a flipped byte is a sha256 mismatch naming the file; resume falls back to the previous one with a warning", async () => {
    const dir = await twoCheckpoints();
    flipByte(`${dir}/step-000200/model.safetensors`, -5);
    const report = verifyCheckpoint(`${dir}/step-000200`);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(/^model\.safetensors: sha256 [0-9a-f]{16}… does not match the manifest's [0-9a-f]{16}… \(the file is corrupted\)$/);

    const warnings: string[] = [];
    const resumed = resumeFromLatest(dir, { warn: (m) => warnings.push(m), expect: modelSignature(tinyState(1)) });
    expect(resumed?.step).toBe(100);
    expect(resumed?.loader).toEqual(tinyState(100).loader);
    expect(Buffer.compare(resumed!.model.tensors[1]!.bytes, tinyState(100).model.tensors[1]!.bytes)).toBe(0);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(`skipping ${dir}/step-000200, corrupted or incomplete: model.safetensors: sha256`);
    expect(warnings[1]).toContain(`resuming from ${dir}/step-000100 (step 100)`);
  });

  it("loading a checkpoint with a wrong checksum is an error, not a silently different run", async () => {
    const dir = await twoCheckpoints();
    flipByte(`${dir}/step-000200/optimizer.safetensors`, -1);
    expect(() => loadCheckpoint(`${dir}/step-000200`)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(`${dir}/step-000200`)).toThrow(/step-000200 cannot be used: optimizer\.safetensors: sha256 .* \(the file is corrupted\)/);
  });

  it("names each problem: a truncated file, a missing one, a step that disagrees, a manifest that is not JSON or absent", async () => {
    const dir = await twoCheckpoints();
    const c = `${dir}/step-000200`;
    truncateSync(`${c}/model.safetensors`, 100);
    rmSync(`${c}/state.json`);
    const got = verifyCheckpoint(c).problems;
    expect(got).toHaveLength(2);
    expect(got[0]).toMatch(/^model\.safetensors is 100 bytes, the manifest says \d+ \(truncated or overwritten\)$/);
    expect(got[1]).toBe("state.json is missing");

    cpSync(`${dir}/step-000100`, `${dir}/step-000300`, { recursive: true });
    expect(verifyCheckpoint(`${dir}/step-000300`).problems).toEqual(["manifest.json: step 100, but the folder is named for step 300"]);
    writeFileSync(`${dir}/step-000300/manifest.json`, '{"format": "kiln-checkpoint", ');
    expect(verifyCheckpoint(`${dir}/step-000300`).problems[0]).toMatch(/^manifest\.json: not valid JSON/);
    rmSync(`${dir}/step-000300/manifest.json`);
    expect(verifyCheckpoint(`${dir}/step-000300`).problems).toEqual(["manifest.json is missing (an incomplete checkpoint, or not a checkpoint folder)"]);
    expect(latestGoodCheckpoint(dir, () => undefined)?.step).toBe(100);
  });

  it("no good checkpoint at all: resume says so and starts from scratch", async () => {
    const dir = await twoCheckpoints();
    flipByte(`${dir}/step-000100/state.json`, 3);
    flipByte(`${dir}/step-000200/state.json`, 3);
    const warnings: string[] = [];
    expect(resumeFromLatest(dir, { warn: (m) => warnings.push(m) })).toBeUndefined();
    expect(warnings.at(-1)).toBe(`checkpoint: no good checkpoint under ${dir} (2 skipped)`);
  });
});

describe("a checkpoint of another model", () => {
  it("is refused with the architecture, the missing and extra parameters and the shapes that differ", async () => {
    const dir = await twoCheckpoints();
    const mine = modelSignature(tinyState(1, 32));
    expect(() => loadCheckpoint(`${dir}/step-000100`, { expect: mine })).toThrow(
      /is a checkpoint of another model: shapes differ: tok_embeddings\.weight is \[64, 16\] in the checkpoint, \[64, 32\] in the model, layers\.0\.attention\.wq\.weight is \[16, 16\] in the checkpoint, \[32, 32\]/,
    );
    const gpt2 = { architecture: "gpt2", params: [{ name: "wte.weight", shape: [64, 16] }, ...mine.params.slice(2)] };
    expect(() => loadCheckpoint(`${dir}/step-000100`, { expect: gpt2 })).toThrow(
      /architecture is 'llama', the model is 'gpt2'; missing parameters wte\.weight; parameters the model does not have: tok_embeddings\.weight, layers\.0\.attention\.wq\.weight; shapes differ: norm\.weight/,
    );
    // NOTE: a good checkpoint of another model is a config error: resume refuses, it does not fall back past it.
    expect(() => resumeFromLatest(dir, { expect: gpt2, warn: () => undefined })).toThrow(/step-000200 is a checkpoint of another model/);
    expect(loadCheckpoint(`${dir}/step-000100`, { expect: modelSignature(tinyState(9)) }).step).toBe(100);
  });
});

describe("a full disk", () => {
  it("an injected ENOSPC ends the save with a disk-full error; no half-written folder; the previous checkpoint intact; later saves work", async () => {
    const dir = root();
    const budget = { bytes: Infinity };
    const ck = new Checkpointer(dir, { fs: fullDiskFs(budget), keepLast: 1, warn: () => undefined });
    await ck.save(tinyState(1));
    await ck.flush();
    budget.bytes = 5000; // the disk fills up in the middle of model.safetensors
    await ck.save(tinyState(2));
    const err = await ck.flush().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).kind).toBe("disk-full");
    expect((err as Error).message).toBe(
      `disk full (ENOSPC) while writing checkpoint ${dir}/step-000002: the partial write was removed and earlier checkpoints are untouched; free some space (or keep fewer checkpoints) and save again`,
    );
    expect(readdirSync(dir)).toEqual(["step-000001"]);
    expect(verifyCheckpoint(`${dir}/step-000001`).ok).toBe(true);
    expect(latestGoodCheckpoint(dir, () => undefined)?.step).toBe(1);
    budget.bytes = Infinity; // space freed: the run goes on saving
    await ck.save(tinyState(3));
    expect(await ck.flush()).toBe(`${dir}/step-000003`);
    expect(readdirSync(dir)).toEqual(["step-000003"]);
  });

  it("a real 1 MiB tmpfs: the checkpoint that does not fit fails with disk-full and leaves the one that did", async (ctx) => {
    const dir = root();
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { encoding: "utf8" });
    if (mounted.status !== 0) ctx.skip(missingReason("tmpfs", (mounted.stderr || mounted.error?.message || "mount failed").trim()));
    cleanup.push(() => spawnSync("umount", [dir]));
    await writeCheckpoint(dir, tinyState(1));
    const err = await writeCheckpoint(dir, tinyState(2, 1024)).then(() => undefined, (e: unknown) => e);
    expect((err as CheckpointError).kind).toBe("disk-full");
    expect((err as Error).message).toMatch(/^disk full \(ENOSPC\) while writing checkpoint .*step-000002: the partial write was removed/);
    expect(readdirSync(dir)).toEqual(["step-000001"]);
    expect(verifyCheckpoint(`${dir}/step-000001`).ok).toBe(true);
  });
});

describe("a failure while replacing a checkpoint of the same step", () => {
  it("puts the old one back: the step's folder is still the previous good checkpoint, and no temp folder is left", async () => {
    const dir = root();
    await writeCheckpoint(dir, tinyState(5));
    const real = nodeCheckpointFs();
    const fs: CheckpointFs = {
      ...real,
      async rename(from, to) {
        if (!from.endsWith("-old") && to.endsWith("step-000005")) throw Object.assign(new Error("EIO: i/o error, rename"), { code: "EIO" });
        await real.rename(from, to);
      },
    };
    const again = { ...tinyState(5), loader: { epoch: 7 } };
    await expect(writeCheckpoint(dir, again, { fs })).rejects.toThrow(
      `writing checkpoint ${dir}/step-000005 failed (EIO: i/o error, rename): the partial write was removed and earlier checkpoints are untouched`,
    );
    expect(readdirSync(dir)).toEqual(["step-000005"]);
    expect(loadCheckpoint(`${dir}/step-000005`).loader).toEqual(tinyState(5).loader);
  });
});

describe("a process killed in the middle of a checkpoint write", () => {
  it("leaves a temp folder that verify calls partial, resume ignores with a warning, and cleanup removes", async () => {
    const dir = root();
    await writeCheckpoint(dir, tinyState(1));
    const child = spawn(process.execPath, ["--import", "tsx", "test/unit/train_checkpoint_child.ts", dir, "2"], { stdio: ["ignore", "pipe", "pipe"] });
    // NOTE: a test that fails or times out before its own kill must not leave the writer running.
    cleanup.push(() => child.kill("SIGKILL"));
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const exit = new Promise<NodeJS.Signals | null>((r) => child.on("exit", (_code, sig) => r(sig)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("write 2")) resolve();
        if (d.toString().includes("done")) reject(new Error("the child finished before it was killed"));
      });
      child.on("exit", () => reject(new Error(`the child exited before writing: ${stderr}`)));
    });
    child.kill("SIGKILL");
    expect(await exit).toBe("SIGKILL");

    const temp = `.step-000002.tmp-${child.pid}`;
    expect(readdirSync(dir).sort()).toEqual([temp, "step-000001"]);
    expect(verifyCheckpoint(`${dir}/${temp}`).problems[0]).toContain(`is a partial write: the temporary folder of a save of step 2 (process ${child.pid}) that did not finish`);
    const warnings: string[] = [];
    expect(latestGoodCheckpoint(dir, (m) => warnings.push(m))?.step).toBe(1);
    expect(warnings).toEqual([`checkpoint: ignoring ${dir}/${temp}, a partial write of step 2 (a save by process ${child.pid} that did not finish)`]);
    expect(await removePartialWrites(dir, () => undefined)).toBe(1);
    expect(readdirSync(dir)).toEqual(["step-000001"]);
    expect(verifyCheckpoint(`${dir}/step-000001`).ok).toBe(true);
  }, 30_000);

  it("cleanup leaves a live writer's temp folder alone, and puts back a checkpoint a killed replace had moved aside", async () => {
    const dir = root();
    await writeCheckpoint(dir, tinyState(3));
    const live = `.step-000004.tmp-${process.ppid}`; // the test runner: a live process that is not this one
    mkdirSync(`${dir}/${live}`);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    cpSync(`${dir}/step-000003`, `${dir}/.step-000005.tmp-${dead}-old`, { recursive: true });
    const warnings: string[] = [];
    await removePartialWrites(dir, (m) => warnings.push(m));
    expect(readdirSync(dir).sort()).toEqual([live, "step-000003", "step-000005"]);
    expect(warnings).toEqual([`checkpoint: restored ${dir}/step-000005 from ${dir}/.step-000005.tmp-${dead}-old, which a save interrupted while replacing it`]);
  });
});
