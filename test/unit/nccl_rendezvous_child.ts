// nccl_rendezvous_child.ts: one rank for nccl_rendezvous.test.ts, a real OS process with torchrun's
// variables, talking to the real TCP store rank 0 hosts. NCCL_MODE picks what it does:
//   uid:   every rank says NCCL opened (agreeNcclReady), then rank 0 makes a random 128-byte id (standing in
//          for ncclGetUniqueId, which needs a GPU) and every rank prints the id it ended with (hex).
//   ready: the ranks in NCCL_FAIL_RANKS say NCCL did not open on them (with a reason naming the rank), the
//          rank in NCCL_SILENT_RANK never answers; every rank prints the error it got (or "ok").
// Run: RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 NCCL_MODE=uid node --import tsx nccl_rendezvous_child.ts

import { randomBytes } from "node:crypto";
import { agreeNcclReady, exchangeUniqueId } from "../../src/dist/nccl/nccl_rendezvous.js";
import { TCPStore } from "../../src/dist/store.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 30 s; exiting`);
  process.exit(124);
}, 30_000).unref();

const rank = Number(process.env.RANK);
const size = Number(process.env.WORLD_SIZE);
const timeoutMs = Number(process.env.NCCL_TIMEOUT_MS ?? "15000");
// NOTE: connecting has its own, longer bound: under load a rank may start seconds after rank 0 listens.
const store = await TCPStore.create({ rank, size, host: process.env.MASTER_ADDR!, port: Number(process.env.MASTER_PORT), timeoutMs: 20_000 });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

try {
  if (process.env.NCCL_MODE === "uid") {
    await agreeNcclReady(store, rank, size, undefined, "nccl/world", timeoutMs);
    let made: Uint8Array | undefined;
    const id = await exchangeUniqueId(store, rank, size, () => (made = new Uint8Array(randomBytes(128))), "nccl/world", timeoutMs);
    console.log(JSON.stringify({ rank, id: hex(id), made: made ? hex(made) : null }));
  } else {
    const fail = (process.env.NCCL_FAIL_RANKS ?? "").split(",").filter(Boolean).map(Number);
    if (rank === Number(process.env.NCCL_SILENT_RANK ?? -1)) {
      // never answers, but stays connected past the others' wait and then joins the closing barrier
      await new Promise((r) => setTimeout(r, timeoutMs + 1000));
      await store.barrier("done", timeoutMs + 5000).catch(() => undefined);
      console.log(JSON.stringify({ rank, silent: true }));
    } else {
      const err = await agreeNcclReady(store, rank, size, fail.includes(rank) ? `no GPU on rank ${rank} (test)` : undefined, "nccl/world", timeoutMs).then(
        () => "ok",
        (e: Error) => e.message,
      );
      // NOTE: rank 0 hosts the store: it stays until the others have read every answer.
      await store.barrier("done", timeoutMs + 5000).catch(() => undefined);
      console.log(JSON.stringify({ rank, result: err }));
    }
  }
} finally {
  await store.close();
}
