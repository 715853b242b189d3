// nccl_rendezvous.test.ts: the part of the nccl communicator that needs no GPU, with real parts: the ranks
// are real OS processes (nccl_rendezvous_child.ts) and the TCP store rank 0 hosts is real. The unique id rank 0
// makes reaches every rank unchanged; a rank where NCCL did not open, or that never answers, is named in every
// rank's error; a store value that is not a 128-byte base64 id is refused naming the key. Children are killed
// in afterEach (and bound themselves to 30 s).

import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { decodeId, exchangeUniqueId } from "../../src/dist/nccl/nccl_rendezvous.js";
import { TCPStore } from "../../src/dist/store.js";
import { freePort } from "../../src/dist/index.js";
import { killRanks, startRanks } from "../helpers/rank_processes.js";

const CHILD = fileURLToPath(new URL("./nccl_rendezvous_child.ts", import.meta.url));
const stores: TCPStore[] = [];
afterEach(async () => {
  killRanks();
  for (const s of stores.splice(0)) await s.close();
});

describe("nccl rendezvous through the TCP store (real processes)", () => {
  it("after every rank said NCCL opened, every rank ends with the 128-byte id rank 0 made", async () => {
    const exits = await startRanks<{ rank: number; id: string; made: string | null }>(CHILD, 3, () => ({ NCCL_MODE: "uid" }));
    for (const e of exits) expect(e.code, e.stderr).toBe(0);
    const outs = exits.map((e) => e.out!);
    const made = outs[0]!.made!;
    expect(made).toMatch(/^[0-9a-f]{256}$/);
    // Only rank 0 made one; every rank holds exactly that one.
    expect(outs.map((o) => o.made)).toEqual([made, null, null]);
    expect(outs.map((o) => o.id)).toEqual([made, made, made]);
  }, 45_000);

  it("a rank where NCCL did not open (with its reason) and a rank that never answers are named in every other rank's error", async () => {
    const exits = await startRanks<{ rank: number; result?: string }>(CHILD, 4, () => ({ NCCL_MODE: "ready", NCCL_FAIL_RANKS: "1,2", NCCL_SILENT_RANK: "3", NCCL_TIMEOUT_MS: "1500" }));
    for (const e of exits) expect(e.code, e.stderr).toBe(0);
    for (const e of exits.slice(0, 3)) {
      expect(e.out!.result).toBe(
        `nccl communicator (rank ${e.rank} of 4): 3 of 4 ranks cannot use NCCL; rank 1: no GPU on rank 1 (test); rank 2: no GPU on rank 2 (test); ` +
          "rank 3: it never said whether NCCL opened on it (no answer in the TCP store within 1500 ms)",
      );
    }
  }, 45_000);
});

describe("the unique id in the store", () => {
  it("refuses a value that is not base64 of exactly 128 bytes, naming the key and the member", () => {
    const good = Buffer.alloc(128, 7).toString("base64");
    expect(Array.from(decodeId(good, "nccl/world/uid", 1))).toEqual(new Array(128).fill(7));
    expect(() => decodeId("not base64!", "nccl/world/uid", 1)).toThrow('nccl rendezvous: member 1: store key "nccl/world/uid" does not hold base64 (got "not base64!")');
    expect(() => decodeId(Buffer.alloc(64).toString("base64"), "nccl/world/uid", 2)).toThrow('nccl rendezvous: member 2: the unique id from store key "nccl/world/uid" must be 128 bytes, got 64');
  });

  it("the leader refuses an id of the wrong size from ncclGetUniqueId, and a member waits for the id only as long as its timeout", async () => {
    const port = await freePort("127.0.0.1");
    const opts = { size: 2, host: "127.0.0.1", port, timeoutMs: 2000 };
    const s0 = await TCPStore.create({ ...opts, rank: 0 });
    stores.push(s0);
    const s1 = await TCPStore.create({ ...opts, rank: 1 });
    stores.push(s1);
    await expect(exchangeUniqueId(s0, 0, 2, () => new Uint8Array(100), "k", 2000)).rejects.toThrow("nccl rendezvous: member 0: the unique id from ncclGetUniqueId must be 128 bytes, got 100");
    await expect(exchangeUniqueId(s1, 1, 2, () => new Uint8Array(128), "k", 300)).rejects.toThrow(/^nccl rendezvous \(k\): member 1 got no unique id from member 0 within 300 ms: rank 1: TCP store get of key "k\/uid" timed out/);
    await expect(exchangeUniqueId(s0, 0, 2, () => new Uint8Array(128), "k2", 300)).rejects.toThrow("nccl rendezvous (k2): member 1 did not fetch the unique id within 300 ms (is it running? did it fail before?)");
  }, 20_000);
});
