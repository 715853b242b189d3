// dist_comm_child.ts: one rank for dist_comm.test.ts, started as a real OS process with torchrun's
// variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). DIST_MODE picks what it does:
//   all:  every collective, with lengths that do not divide by the world size; prints one JSON line of results.
//   hang: rank DIST_HANG_RANK joins, then never calls the collective (sleeps until killed); the others call
//         allReduce and print the error they get. With DIST_HANG_EXIT=1 that rank dies (exit without close) instead.
// Run: RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 DIST_MODE=all node --import tsx dist_comm_child.ts

import { createHash } from "node:crypto";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { rankInput } from "./dist_comm_inputs.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 30 s; exiting`);
  process.exit(124);
}, 30_000).unref();
const mode = process.env.DIST_MODE;
const timeoutMs = Number(process.env.DIST_TIMEOUT_MS ?? "20000");
const comm = await createCommunicatorFromEnv({ timeoutMs });
const { rank, size } = comm;
const list = (a: Float32Array): number[] => Array.from(a);
const sha = (a: Float32Array): string => createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");

if (mode === "all") {
  const next = (rank + 1) % size;
  const prev = (rank + size - 1) % size;
  const root = size - 1;
  const out: Record<string, unknown> = { rank, size };
  out.sumSmall = list(await comm.allReduce(rankInput(rank, 11, 1)));
  out.sumBig = sha(await comm.allReduce(rankInput(rank, 100_003, 2)));
  out.sumTiny = list(await comm.allReduce(rankInput(rank, 2, 3)));
  out.max = list(await comm.allReduce(rankInput(rank, 13, 4), "max"));
  out.gather = list(await comm.allGather(rankInput(rank, 5, 5)));
  out.scatter = list(await comm.reduceScatter(rankInput(rank, 11, 6)));
  out.scatterTiny = list(await comm.reduceScatter(rankInput(rank, 3, 7)));
  out.broadcast = list(await comm.broadcast(rank === root ? rankInput(root, 9, 8) : new Float32Array(9), root));
  await comm.send(rankInput(rank, 7, 9), next);
  await comm.send(rankInput(rank, 70_001, 10), next);
  out.recvSmall = list(await comm.recv(prev));
  out.recvBig = sha(await comm.recv(prev));
  await comm.barrier();
  await comm.close();
  console.log(JSON.stringify(out));
} else if (mode === "hang") {
  if (rank === Number(process.env.DIST_HANG_RANK) && process.env.DIST_HANG_EXIT === "1") {
    process.exit(7);
  } else if (rank === Number(process.env.DIST_HANG_RANK)) {
    console.log(JSON.stringify({ rank, hanging: true }));
    setInterval(() => {}, 1_000); // joined, never calls allReduce: the test kills it (or the 30 s bound does).
  } else {
    const started = Date.now();
    const error = await comm.allReduce(rankInput(rank, 10, 1)).then(
      () => "no error",
      (e: Error) => e.message,
    );
    console.log(JSON.stringify({ rank, error, waitedMs: Date.now() - started }));
    await comm.close();
  }
} else {
  throw new Error(`DIST_MODE must be "all" or "hang", got ${JSON.stringify(mode)}`);
}
