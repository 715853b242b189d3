// train_checkpoint.test.ts: the checkpoint writer and loader (src/train/checkpoint): a checkpoint
// round-trips bit for bit; its folder holds the four files, with the sha256 and sizes that an
// independent hash of the files gives; model.safetensors is plain safetensors (parsed here by hand);
// the write follows the durable order (fsync each file, the temp folder, rename, the parent); save()
// returns before the disk is done, from a snapshot; one write in flight; retention keeps the last N
// and every M-th. Faults (corruption, full disk, kill, another model) are train_checkpoint_faults.test.ts.

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { Checkpointer, CheckpointError, loadCheckpoint, nodeCheckpointFs, stepsToDelete, verifyCheckpoint, writeCheckpoint } from "../../src/train/checkpoint/index.js";
import type { CheckpointFs, CheckpointState } from "../../src/train/checkpoint/index.js";
import { gatedFs, scratch, tinyState } from "./train_checkpoint_helpers.js";

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});
function root(): string {
  const s = scratch();
  cleanup.push(s.done);
  return s.dir;
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) throw new Error("waitFor: condition not met in 5 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function expectSameState(got: CheckpointState, want: CheckpointState): void {
  expect({ ...got, model: undefined, optimizer: undefined }).toEqual({ ...want, model: undefined, optimizer: undefined });
  expect(got.model.architecture).toBe(want.model.architecture);
  expect(got.optimizer.state).toEqual(want.optimizer.state);
  for (const part of ["model", "optimizer"] as const) {
    expect(got[part].tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(want[part].tensors.map((t) => [t.name, t.dtype, [...t.shape]]));
    got[part].tensors.forEach((t, i) => expect(Buffer.compare(t.bytes, want[part].tensors[i]!.bytes)).toBe(0));
  }
}

describe("writeCheckpoint / loadCheckpoint", () => {
  it("round-trips every field bit for bit, in a step-NNNNNN folder with the four files and nothing left over", async () => {
    const dir = root();
    const state = tinyState(7);
    const out = await writeCheckpoint(dir, state);
    expect(out).toBe(`${dir}/step-000007`);
    expect(readdirSync(dir)).toEqual(["step-000007"]);
    expect(readdirSync(out).sort()).toEqual(["manifest.json", "model.safetensors", "optimizer.safetensors", "state.json"]);
    expectSameState(loadCheckpoint(out), state);
    expect(verifyCheckpoint(out)).toEqual({ dir: out, step: 7, ok: true, problems: [] });
  });

  it("records each file's size and sha256 as an independent hash of the file gives them", async () => {
    const out = await writeCheckpoint(root(), tinyState(3));
    const manifest = JSON.parse(readFileSync(`${out}/manifest.json`, "utf8")) as { step: number; formatVersion: number; kilnVersion: string; files: Record<string, { size: number; sha256: string }> };
    expect(manifest.step).toBe(3);
    expect(manifest.formatVersion).toBe(1);
    expect(manifest.kilnVersion).toBe((JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version);
    expect(Object.keys(manifest.files).sort()).toEqual(["model.safetensors", "optimizer.safetensors", "state.json"]);
    for (const [name, entry] of Object.entries(manifest.files)) {
      const data = readFileSync(`${out}/${name}`);
      expect(entry).toEqual({ size: data.length, sha256: createHash("sha256").update(data).digest("hex") });
    }
  });

  it("writes model.safetensors as plain safetensors: header JSON with offsets, then each tensor's bytes", async () => {
    const state = tinyState(1);
    const data = readFileSync(`${await writeCheckpoint(root(), state)}/model.safetensors`);
    const len = Number(data.readBigUInt64LE(0));
    expect((8 + len) % 8).toBe(0);
    const header = JSON.parse(data.subarray(8, 8 + len).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    for (const t of state.model.tensors) {
      const h = header[t.name]!;
      expect([h.dtype, h.shape]).toEqual([t.dtype, t.shape]);
      expect(Buffer.compare(data.subarray(8 + len + h.data_offsets[0], 8 + len + h.data_offsets[1]), t.bytes)).toBe(0);
    }
  });

  it("fsyncs every file and the temp folder before the rename, and the parent after it", async () => {
    const dir = root();
    const real = nodeCheckpointFs();
    const log: string[] = [];
    const short = (p: string) => p.slice(dir.length + 1);
    const logged = <A extends unknown[]>(what: (...a: A) => string, op: (...a: A) => Promise<void>) => async (...a: A) => {
      await op(...a);
      log.push(what(...a));
    };
    const fs: CheckpointFs = {
      ...real,
      async create(path) {
        const f = await real.create(path);
        log.push(`create ${short(path)}`);
        return { write: f.write, sync: logged(() => `sync ${short(path)}`, f.sync), close: logged(() => `close ${short(path)}`, f.close) };
      },
      rename: logged((a, b) => `rename ${short(a)} -> ${short(b)}`, real.rename),
      syncDir: logged((p) => `syncDir ${p === dir ? "." : short(p)}`, real.syncDir),
    };
    await writeCheckpoint(dir, tinyState(2), { fs, pid: 4242 });
    const t = ".step-000002.tmp-4242";
    const files = ["model.safetensors", "optimizer.safetensors", "state.json", "manifest.json"];
    expect(log).toEqual([
      ...files.flatMap((f) => [`create ${t}/${f}`, `sync ${t}/${f}`, `close ${t}/${f}`]),
      `syncDir ${t}`,
      `rename ${t} -> step-000002`,
      "syncDir .",
    ]);
  });

  it("a second save of the same step (a resumed run reaching it again) replaces the first", async () => {
    const dir = root();
    await writeCheckpoint(dir, tinyState(5));
    const again = { ...tinyState(5, 16), loader: { epoch: 9 }, model: tinyState(6).model };
    await writeCheckpoint(dir, again);
    expect(readdirSync(dir)).toEqual(["step-000005"]);
    expectSameState(loadCheckpoint(`${dir}/step-000005`), again);
  });

  it("refuses a state whose tensor bytes do not match its dtype and shape, or a name used twice, naming the tensor", async () => {
    const s = tinyState(1);
    const short = { ...s, model: { ...s.model, tensors: [{ ...s.model.tensors[0]!, bytes: new Uint8Array(12) }] } };
    await expect(writeCheckpoint(root(), short)).rejects.toThrow(/model tensor 'tok_embeddings.weight': 12 bytes, but F32 \[64, 16\] needs 4096/);
    const twice = { ...s, optimizer: { ...s.optimizer, tensors: [s.optimizer.tensors[0]!, s.optimizer.tensors[0]!] } };
    await expect(writeCheckpoint(root(), twice)).rejects.toThrow(/optimizer tensor 'exp_avg' appears twice/);
    await expect(writeCheckpoint(root(), { ...s, step: -1 })).rejects.toBeInstanceOf(CheckpointError);
  });
});

describe("Checkpointer (asynchronous saves)", () => {
  it("save() returns while the disk is still busy, from a snapshot: later changes to the buffers are not saved", async () => {
    const dir = root();
    const { fs, release, writes } = gatedFs();
    const ck = new Checkpointer(dir, { fs, warn: () => undefined });
    const state = tinyState(4);
    const original = state.model.tensors[0]!.bytes.slice();
    await ck.save(state);
    await waitFor(() => writes() === 1); // the first write is waiting on the disk
    expect(ck.writing).toBe(true);
    expect(readdirSync(dir)).not.toContain("step-000004");
    state.model.tensors[0]!.bytes.fill(0xff); // the next training step overwrites the buffers
    release();
    expect(await ck.flush()).toBe(`${dir}/step-000004`);
    expect(ck.writing).toBe(false);
    expect(Buffer.compare(loadCheckpoint(`${dir}/step-000004`).model.tensors[0]!.bytes, original)).toBe(0);
  });

  it("once the previous write is done, save() takes its snapshot before it returns, even when not awaited", async () => {
    const dir = root();
    const ck = new Checkpointer(dir, { warn: () => undefined });
    await ck.save(tinyState(1));
    await waitFor(() => !ck.writing);
    const state = tinyState(2);
    const original = state.optimizer.tensors[1]!.bytes.slice();
    const saved = ck.save(state);
    state.optimizer.tensors[1]!.bytes.fill(0); // synchronously after the call, before any await
    await saved;
    await ck.flush();
    expect(Buffer.compare(loadCheckpoint(`${dir}/step-000002`).optimizer.tensors[1]!.bytes, original)).toBe(0);
  });

  it("keeps one write in flight: saves made while one runs wait for it, none is dropped, none overlaps", async () => {
    const dir = root();
    const gated = gatedFs();
    let active = 0;
    let most = 0;
    const fs: CheckpointFs = {
      ...gated.fs,
      async mkdir(path) {
        await gated.fs.mkdir(path);
        if (path.includes(".tmp-")) most = Math.max(most, ++active);
      },
      async rename(from, to) {
        await gated.fs.rename(from, to);
        if (from.includes(".tmp-") && !from.endsWith("-old")) active--;
      },
    };
    const ck = new Checkpointer(dir, { fs, warn: () => undefined });
    await ck.save(tinyState(1));
    let second = false;
    const p2 = ck.save(tinyState(2)).then(() => (second = true));
    const p3 = ck.save(tinyState(3)); // not awaited by the caller either
    await waitFor(() => gated.writes() === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(second).toBe(false);
    expect(gated.writes()).toBe(1);
    gated.release();
    await Promise.all([p2, p3]);
    expect(await ck.flush()).toBe(`${dir}/step-000003`);
    expect(readdirSync(dir).sort()).toEqual(["step-000001", "step-000002", "step-000003"]);
    expect(most).toBe(1);
  });

  it("keeps the last N and every M-th step, deleting only after the new checkpoint is durable", async () => {
    const dir = root();
    const ck = new Checkpointer(dir, { keepLast: 2, keepEvery: 3, warn: () => undefined });
    for (let step = 1; step <= 7; step++) await ck.save(tinyState(step));
    await ck.flush();
    expect(readdirSync(dir).sort()).toEqual(["step-000003", "step-000006", "step-000007"]);
    for (const d of readdirSync(dir)) expect(verifyCheckpoint(`${dir}/${d}`).ok).toBe(true);
  });

  it("retention: never the current step, never a step after it, the newest N of the rest and multiples of M kept", () => {
    const steps = [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12];
    expect(stepsToDelete(steps, 10, { keepLast: 3, keepEvery: 4 })).toEqual([7, 6, 5, 3, 2, 1]);
    expect(stepsToDelete(steps, 10, { keepLast: 1 })).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(stepsToDelete([5], 5, { keepLast: 1 })).toEqual([]);
    expect(() => new Checkpointer("unused", { keepLast: 0 })).toThrow(/keepLast must be a whole number >= 1, got 0/);
  });
});
