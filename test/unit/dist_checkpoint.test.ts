// dist_checkpoint.test.ts: the two-phase commit of distributed checkpoints
// (train/checkpoint/sharded_checkpoint_writer.ts), with real parts: ranks are real OS processes
// (dist_zero_child.ts, ZeRO-2) on the `local` communicator, the shards real files in a temp folder. A save
// where one rank's shard write fails (ENOSPC), or one rank is SIGKILLed mid-write, commits nothing: every
// surviving rank is told (naming the failed rank, or the collective whose peer died), no step folder appears,
// and the previous checkpoint stays the newest good one. A committed checkpoint whose shard is later damaged
// or lost is skipped by resume, naming the shard. Elastic resize is dist_elastic.test.ts.
// Every child is killed in afterEach, also when a test fails; each has its own 180 s bound too (the multi-rank tests take 240 s: CPU time is 10-20 s each on 2 idle cores, but this shared machine ran them at load 20-80).

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createCommunicator, freePort } from "../../src/dist/index.js";
import { latestGoodCheckpoint, loadCheckpoint, readShardPart, verifyCheckpoint, writeShardedCheckpoint } from "../../src/train/checkpoint/index.js";
import { killRanks, startRanks } from "./dist_zero_ranks.js";

afterEach(killRanks);
const tmp = mkdtempSync(join(tmpdir(), "kiln-dist-ckpt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("distributed checkpoints: two-phase commit", () => {
  for (const fail of ["throw", "kill"] as const) {
    it(`rank 1's shard write ${fail === "throw" ? "fails (ENOSPC)" : "dies (SIGKILL) mid-write"}: nothing is committed, the previous checkpoint stays the newest good one`, async () => {
      const root = join(tmp, `fail-${fail}`);
      const exits = await startRanks(2, () => ({
        ZR_STEPS: "4", ZR_STAGE: "2", ZR_CKPT: root, ZR_SAVE_AT: "2,4", ZR_FAIL_RANK: "1", ZR_FAIL: fail, ZR_FAIL_AT: "4", ZR_TIMEOUT_MS: "4000",
      }));
      const warnings: string[] = [];
      const good = latestGoodCheckpoint(root, (w) => warnings.push(w));
      expect(good?.step).toBe(2);
      expect(readdirSync(root).filter((n) => n.startsWith("step-"))).toEqual(["step-000002"]);
      expect(verifyCheckpoint(good!.dir).ok).toBe(true);
      if (fail === "throw") {
        for (const e of exits) {
          expect(e.code, e.stderr).toBe(0);
          expect(e.out!.saveErrors).toHaveLength(1);
          expect(e.out!.saveErrors![0]).toMatch(new RegExp(`step-000004 \\(rank ${e.rank} of 2\\): not committed: rank 1 failed to write its shard`));
        }
        // The failing rank says why; rank 0 removed the temp folder.
        expect(exits[1]!.out!.saveErrors![0]).toContain("disk full (ENOSPC)");
        expect(readdirSync(root).filter((n) => n.startsWith("."))).toEqual([]);
      } else {
        expect(exits[1]!.code).toBeNull(); // killed
        for (const e of [exits[0]!]) {
          expect(e.code, e.stderr).toBe(0);
          console.log("rank 0 after rank 1 died mid-write:", e.out!.saveErrors![0]);
          expect(e.out!.saveErrors![0]).toMatch(/not committed, a rank did not report its shard \(.*rank 1/);
        }
      }
    }, 240_000);
  }

  it("a committed checkpoint whose shard is damaged or lost afterwards is skipped by resume, naming the shard", () => {
    const good = join(tmp, "fail-throw", "step-000002");
    const root = join(tmp, "damaged");
    cpSync(good, join(root, "step-000002"), { recursive: true });
    const shard = join(root, "step-000002", "shard-00001-of-00002.safetensors");
    const bytes = readFileSync(shard);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(shard, bytes);
    const warnings: string[] = [];
    expect(latestGoodCheckpoint(root, (w) => warnings.push(w))).toBeUndefined();
    expect(warnings.join("\n")).toMatch(/shard-00001-of-00002\.safetensors: sha256 [0-9a-f]+… does not match the manifest's/);
    rmSync(shard);
    expect(verifyCheckpoint(join(root, "step-000002")).problems).toContain("shard-00001-of-00002.safetensors is missing");
  });

  it("bad input is named: parts of the wrong length, parts that do not tile, a distributed checkpoint given to the single-process loader", async () => {
    const comm = await createCommunicator({ backend: "local", rank: 0, size: 1, masterAddr: "127.0.0.1", masterPort: await freePort("127.0.0.1"), timeoutMs: 5000 });
    try {
      const root = join(tmp, "bad-input");
      const f32 = (n: number) => ({ name: "params", dtype: "F32" as const, shape: [n], bytes: new Uint8Array(4 * n) });
      const meta = { config: null, architecture: "gpt2", layout: [{ name: "w", shape: [4], offset: 0 }], optimizer: { kind: "adamw", step: 1 }, rng: null, loader: null };
      await expect(writeShardedCheckpoint(root, comm, { step: 1, range: [0, 4], total: 4, tensors: [f32(3)] }, meta)).rejects.toThrow(
        "(rank 0 of 1): tensor 'params' is [3], not this rank's part of 4 elements",
      );
      await expect(writeShardedCheckpoint(root, comm, { step: 1, range: [0, 3], total: 4, tensors: [f32(3)] }, meta)).rejects.toThrow(
        "not committed: the ranks' parts [0, 3) do not tile the 4 elements in rank order",
      );
      expect(readdirSync(root)).toEqual([]);
      const dir = await writeShardedCheckpoint(root, comm, { step: 1, range: [0, 4], total: 4, tensors: [f32(4)] }, meta);
      expect(verifyCheckpoint(dir).ok).toBe(true);
      expect(() => loadCheckpoint(dir)).toThrow("is a distributed checkpoint written by 1 ranks: load it part by part");
      expect(readShardPart(dir, meta, [1, 3]).tensors.get("params")).toEqual(new Float32Array(2));
      expect(() => readShardPart(dir, { architecture: "gpt2", layout: [{ name: "w", shape: [2, 2], offset: 0 }] }, [0, 4])).toThrow("shapes differ: w is [4] in the checkpoint, [2, 2] in the model");
      // Another layout's padding (a backend that aligns views) lines up by parameter: w [3] at 0 and b [2] at 3,
      // read into a layout with b at 4 (element 3 padding, zero), and a part that starts inside w.
      const values = Float32Array.of(1, 2, 3, 4, 5);
      const layout = [{ name: "w", shape: [3], offset: 0 }, { name: "b", shape: [2], offset: 3 }];
      const padded = await writeShardedCheckpoint(root, comm, { step: 2, range: [0, 5], total: 5, tensors: [{ name: "params", dtype: "F32", shape: [5], bytes: new Uint8Array(values.buffer) }] }, { ...meta, layout });
      const mine = [{ name: "w", shape: [3], offset: 0 }, { name: "b", shape: [2], offset: 4 }];
      expect(readShardPart(padded, { architecture: "gpt2", layout: mine }, [0, 6]).tensors.get("params")).toEqual(Float32Array.of(1, 2, 3, 0, 4, 5));
      const part = readShardPart(padded, { architecture: "gpt2", layout: mine }, [2, 5]);
      expect(part.tensors.get("params")).toEqual(Float32Array.of(3, 0, 4));
      // Read: the header's length and the header, then elements 2 and 3 of the file (4 bytes each), not the rest.
      const file = readFileSync(join(padded, "shard-00000-of-00001.safetensors"));
      const headerLen = Number(file.readBigUInt64LE(0));
      expect(part.bytesRead).toBe(8 + headerLen + 8);
      expect(file.length).toBe(8 + headerLen + 20);
    } finally {
      await comm.close();
    }
  });
});
