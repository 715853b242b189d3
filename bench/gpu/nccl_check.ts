// nccl_check.ts: the nccl communicator on a real GPU, for npm run test:gpu (run.mjs starts it with the
// results path). One GPU cannot host two NCCL ranks, so this is world size 1: the real path end to end
// (libnccl found and loaded, the unique id through the TCP store, ncclCommInitRank, collectives on the
// stream, completion polled, destroy) where every collective's answer is known: the rank's own data.
// Each case checks its result exactly and reports its own error instead of stopping the rest; a 64 MiB
// all-reduce is timed too (at world size 1 NCCL copies on the device: no link is measured). Writes JSON
// ({ rows }) to argv[2]; exits 1 when a case failed. Without a GPU it fails at once with the sentence that
// names what is missing.
// NOTE: never run yet (no GPU was lent while it was written); docs/distributed.md says so.

import { writeFileSync } from "node:fs";
import { openNccl } from "../../src/index.js";
import { createCommunicator, freePort } from "../../src/dist/index.js";
import type { NcclCommunicator } from "../../src/dist/index.js";

interface Row { readonly name: string; readonly ms?: number; readonly gbps?: number; readonly error?: string }
const rows: Row[] = [];
const out = process.argv[2] ?? "bench/results/gpu-nccl.json";
const save = () => writeFileSync(out, JSON.stringify({ rows }, null, 2));

async function check(name: string, f: () => Promise<Omit<Row, "name"> | void>): Promise<void> {
  const t0 = performance.now();
  try {
    const r = await f();
    rows.push({ name, ms: performance.now() - t0, ...r });
  } catch (err) {
    rows.push({ name, error: (err as Error).message.split("\n").slice(0, 3).join(" ") });
  }
  console.log(JSON.stringify(rows[rows.length - 1]));
  save();
}

function same(what: string, got: Float32Array, want: Float32Array): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} elements, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
}

const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e3);
let comm: NcclCommunicator | undefined;
await check("nccl: createCommunicator (world size 1)", async () => {
  comm = (await createCommunicator({ backend: "nccl", rank: 0, size: 1, masterAddr: "127.0.0.1", masterPort: await freePort("127.0.0.1"), timeoutMs: 30_000 })) as NcclCommunicator;
});
if (comm) {
  const c = comm;
  await check("nccl: allReduce sum and max", async () => {
    same("allReduce sum", await c.allReduce(x), x);
    same("allReduce max", await c.allReduce(x, "max"), x);
  });
  await check("nccl: allGather, reduceScatter, broadcast, allToAll, barrier", async () => {
    same("allGather", await c.allGather(x), x);
    same("reduceScatter", await c.reduceScatter(x), x);
    same("broadcast", await c.broadcast(x, 0), x);
    same("allToAll", await c.allToAll(x), x);
    await c.barrier();
  });
  await check("nccl: device buffers (allReduce avg in place, f32)", async () => {
    const { rt } = await openNccl(0);
    const p = rt.memAlloc(x.byteLength);
    // NOTE: the copies on a stream of their own, synchronized: the communicator's stream is non-blocking, so
    // it does not wait for work on the legacy default stream.
    const s = rt.streamCreate();
    try {
      rt.copyHtoD(p, x, s);
      rt.streamSynchronize(s);
      await c.deviceCollective("allReduce", p, p, x.length, "f32", "avg");
      const back = new Float32Array(x.length);
      rt.copyDtoH(back, p, s);
      rt.streamSynchronize(s);
      same("device allReduce avg", back, x);
    } finally {
      rt.memFree(p);
      rt.streamDestroy(s);
    }
  });
  await check("nccl: 64 MiB allReduce, host-staged (world size 1: a device copy, not a link)", async () => {
    const big = new Float32Array(16 << 20).fill(1.5);
    await c.allReduce(big);
    const reps = 5;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await c.allReduce(big);
    const ms = (performance.now() - t0) / reps;
    return { ms, gbps: big.byteLength / (ms / 1000) / 1e9 };
  });
  await check("nccl: close", () => c.close());
}
save();
process.exit(rows.every((r) => r.error === undefined) ? 0 : 1);
