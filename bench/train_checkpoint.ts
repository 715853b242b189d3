// train_checkpoint.ts: what an asynchronous training checkpoint costs the training loop. For a state of
// --mib MiB (a third model weights, two thirds optimizer moments, f32), it times save() (the snapshot
// copy the step waits for), the write until durable (flush), and the longest the event loop was held
// up while the write ran (a 1 ms timer's worst lateness: what a step running beside the write could
// lose). Median of --runs saves into a temp folder, removed afterwards.
//
//   npx tsx bench/train_checkpoint.ts [--mib 192] [--runs 3]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Checkpointer } from "../src/train/checkpoint/index.js";
import type { CheckpointState } from "../src/train/checkpoint/index.js";
import { machineInfo } from "./lib/machine.js";

const { values } = parseArgs({ options: { mib: { type: "string", default: "192" }, runs: { type: "string", default: "3" } } });
const mib = Number(values.mib);
const runs = Number(values.runs);

function filled(n: number, seed: number): Uint8Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.001 + seed);
  return new Uint8Array(out.buffer);
}

const floats = Math.floor((mib * 2 ** 20) / 4 / 3);
function state(step: number): CheckpointState {
  return {
    step,
    config: { bench: true },
    model: { architecture: "llama", tensors: [{ name: "weights", dtype: "F32", shape: [floats], bytes: filled(floats, 1) }] },
    optimizer: {
      tensors: [
        { name: "exp_avg", dtype: "F32", shape: [floats], bytes: filled(floats, 2) },
        { name: "exp_avg_sq", dtype: "F32", shape: [floats], bytes: filled(floats, 3) },
      ],
      state: { t: step },
    },
    rng: { seed: 1, offset: 0 },
    loader: { epoch: 0 },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), "kiln-bench-ckpt-"));
const rows: { save: number; durable: number; lag: number }[] = [];
try {
  const ck = new Checkpointer(dir, { keepLast: 1 });
  for (let r = 1; r <= runs; r++) {
    const s = state(r);
    let lag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lag = Math.max(lag, now - last - 1);
      last = now;
    }, 1);
    const t0 = performance.now();
    await ck.save(s);
    const t1 = performance.now();
    last = t1; // the lag while the write runs, not the save() call itself
    await ck.flush();
    const t2 = performance.now();
    clearInterval(timer);
    rows.push({ save: t1 - t0, durable: t2 - t0, lag });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const m = machineInfo();
console.log(`checkpoint of ${mib} MiB, median of ${runs}, ${m.cpu} (${m.cores} cores), ${tmpdir()}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`  save() returns after   ${median(rows.map((r) => r.save)).toFixed(1)} ms (the snapshot copy)`);
console.log(`  durable after          ${median(rows.map((r) => r.durable)).toFixed(1)} ms (${((mib / median(rows.map((r) => r.durable))) * 1000).toFixed(0)} MiB/s)`);
console.log(`  event loop held up     ${median(rows.map((r) => r.lag)).toFixed(1)} ms at most, while writing`);
