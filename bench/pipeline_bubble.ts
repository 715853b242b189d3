// pipeline_bubble.ts (npx tsx bench/pipeline_bubble.ts): the pipeline bubble, measured. For each
// (stages p, micro-batches m) it runs p real stage processes (pipeline_bubble_rank.ts, one cpu thread
// each, over the `local` communicator) and reports each stage's idle share of the step (1 - its forward
// and backward time / the step), beside two baselines: the planner's (p - 1) / (m + p - 1) (equal stages,
// free communication: src/plan pipelineBubble) and a 1F1B simulation from the stages' own measured
// forward and backward times (free communication: what the partition's imbalance alone leaves). The gap
// between measured and simulated is communication and host overhead. Prints a markdown table.
//
//   npx tsx bench/pipeline_bubble.ts [-- --steps 8 --skip 3]

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort } from "../src/dist/index.js";
import { simulateOneForwardOneBackward } from "../src/dist/pipeline_schedule.js";
import { pipelineBubble } from "../src/plan/index.js";
import { machineInfo } from "./lib/machine.js";

const RANK = fileURLToPath(new URL("./pipeline_bubble_rank.ts", import.meta.url));
const { values } = parseArgs({ options: { steps: { type: "string", default: "8" }, skip: { type: "string", default: "3" } } });
const [steps, skip] = [Number(values.steps), Number(values.skip)];
const CASES = [
  { p: 2, m: 1 },
  { p: 2, m: 2 },
  { p: 2, m: 4 },
  { p: 2, m: 8 },
  { p: 4, m: 4 },
  { p: 4, m: 8 },
];

interface Timing { wallMs: number; busyMs: number; forwardMs: number; backwardMs: number; idleShare: number }
interface RankOut { rank: number; ranges: [number, number][]; costs: number[]; timings: Timing[] }

async function run(p: number, m: number): Promise<RankOut[]> {
  const port = await freePort("127.0.0.1");
  return Promise.all(
    [...Array(p).keys()].map((rank) => {
      const proc = spawn(process.execPath, ["--import", "tsx", RANK], {
        env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(p), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), KILN_THREADS: "1", BUBBLE_MICRO: String(m), BUBBLE_STEPS: String(steps) },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      proc.stdout!.on("data", (d) => (out += d));
      return new Promise<RankOut>((resolve, reject) =>
        proc.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1)!) as RankOut) : reject(new Error(`rank ${rank} of p=${p} m=${m} exited with ${code}`)))),
      );
    }),
  );
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const m0 = machineInfo();
console.log(`pipeline bubble, ${new Date().toISOString().slice(0, 10)}, ${m0.cpu} (${m0.cores} cores), node ${m0.node}; steps ${skip}..${steps - 1} of each run\n`);
console.log("| p | m | partition (pieces per stage) | step ms | idle per stage, measured | simulated from stage times | formula (p-1)/(m+p-1) |");
console.log("|---|---|---|---|---|---|---|");
for (const { p, m } of CASES) {
  const outs = await run(p, m);
  const kept = outs.map((o) => o.timings.slice(skip));
  const sim = simulateOneForwardOneBackward(kept.map((t) => mean(t.map((x) => x.forwardMs)) / m), kept.map((t) => mean(t.map((x) => x.backwardMs)) / m), m);
  const measured = kept.map((t) => mean(t.map((x) => x.idleShare)));
  const stepMs = mean(kept[0]!.map((x) => x.wallMs));
  const parts = `${outs[0]!.ranges.map(([a, b]) => b - a).join("+")} (piece ms ${outs[0]!.costs.map((c) => c.toFixed(1)).join(" ")})`;
  console.log(`| ${p} | ${m} | ${parts} | ${stepMs.toFixed(0)} | ${measured.map(pct).join(" ")} | ${sim.idleShare.map(pct).join(" ")} | ${pct(pipelineBubble(p, m))} |`);
}
