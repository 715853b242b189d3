// fuzz_files.ts: the long model-file fuzz run (npm run fuzz:files): every reader of
// test/fuzz/model_file_targets.ts gets --runs mutated files (default 10,000), each reader in a child
// process of its own, so a crash (an out-of-memory abort, say) or a hang (the child killed at --timeout
// seconds) is counted instead of ending the run. Writes bench/results/fuzz-files-<machine>.json and .md:
// cases, loaded, refused with an error naming the file, bad errors (crashes), hangs (cases over the
// per-case bound of CPU time), the slowest case, and each child's peak RSS. CI runs the short version
// (test/fuzz/model_files.test.ts).
//   npm run fuzz:files -- [--runs N] [--seed S] [--target NAME] [--timeout SECONDS] [--out DIR] [--tag TAG]

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { fuzzTargets, runCase } from "../test/fuzz/model_file_targets.js";
import { machineInfo } from "./lib/machine.js";

/** A case taking more CPU time than this is a hang. */
const HANG_MS = 5000;

interface TargetResult {
  readonly target: string;
  readonly reads: string;
  readonly cases: number;
  readonly loaded: number;
  readonly refused: number;
  /** Cases that threw an internal error (RangeError, TypeError, ...) or one not naming the file, or a dead child. */
  readonly crashes: number;
  readonly hangs: number;
  readonly slowestMs: number;
  readonly peakRssMiB: number;
  readonly seconds: number;
  readonly examples: readonly string[];
}

/** Child: runs one target's cases and prints its TargetResult as JSON. */
function child(name: string, runs: number, seed: number): void {
  const { targets, dispose } = fuzzTargets();
  try {
    const target = targets.find((t) => t.name === name);
    if (!target) throw new Error(`unknown target '${name}' (known: ${targets.map((t) => t.name).join(", ")})`);
    const t0 = performance.now();
    const counts = { loaded: 0, refused: 0, crashes: 0, hangs: 0 };
    let slowest = 0;
    const examples: string[] = [];
    for (const input of fc.sample(target.input, { numRuns: runs, seed })) {
      const cpu0 = process.cpuUsage();
      const o = runCase(target, input);
      const cpu = process.cpuUsage(cpu0);
      // NOTE: CPU time, not wall time: on a shared machine a case mostly waits for a core (its file reads hit the page cache).
      const ms = (cpu.user + cpu.system) / 1000;
      slowest = Math.max(slowest, ms);
      if (ms > HANG_MS) counts.hangs++;
      if (o.kind === "bad-error") {
        counts.crashes++;
        if (examples.length < 5) examples.push(o.error);
      } else counts[o.kind]++;
    }
    const result: TargetResult = {
      target: target.name, reads: target.reads, cases: runs, ...counts, slowestMs: Math.round(slowest),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), seconds: Math.round((performance.now() - t0) / 1000), examples,
    };
    console.log(JSON.stringify(result));
  } finally {
    dispose();
  }
}

function markdown(rows: readonly TargetResult[], machine: ReturnType<typeof machineInfo>, date: string, seed: number): string {
  return [
    `Model-file fuzz, ${date.slice(0, 10)}, on ${machine.cpu} (${machine.cores} cores), ${machine.os}, ${machine.node}; seed ${seed}; a case over ${HANG_MS} ms of CPU time is a hang.`,
    "",
    "| reader | cases | loaded | refused (error names the file) | crashes | hangs | slowest case (CPU ms) | peak RSS MiB | seconds |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.target} | ${r.cases} | ${r.loaded} | ${r.refused} | ${r.crashes} | ${r.hangs} | ${r.slowestMs} | ${r.peakRssMiB} | ${r.seconds} |`),
    "",
  ].join("\n");
}

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "10000" },
    seed: { type: "string", default: "20261207" },
    target: { type: "string" },
    child: { type: "boolean" },
    timeout: { type: "string", default: "1800" },
    out: { type: "string", default: "bench/results" },
    tag: { type: "string" },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
if (!(Number.isInteger(runs) && runs > 0) || !Number.isInteger(seed)) {
  console.error(`--runs must be a positive integer and --seed an integer, got ${values.runs} and ${values.seed}`);
  process.exit(2);
}

if (values.child) {
  child(values.target!, runs, seed);
} else {
  const { targets, dispose } = fuzzTargets();
  const all = targets.map((t) => [t.name, t.reads] as const);
  dispose();
  const chosen = values.target === undefined ? all : all.filter(([n]) => n === values.target);
  if (chosen.length === 0) {
    console.error(`unknown target '${values.target}' (known: ${all.map(([n]) => n).join(", ")})`);
    process.exit(2);
  }
  const rows: TargetResult[] = [];
  for (const [name, reads] of chosen) {
    process.stdout.write(`${name}: ${runs} cases… `);
    const t0 = performance.now();
    // NOTE: process.execArgv carries tsx's loader into the child.
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, "--child", "--target", name, "--runs", String(runs), "--seed", String(seed)], {
      encoding: "utf8", timeout: Number(values.timeout) * 1000, maxBuffer: 1 << 24,
    });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    let row: TargetResult;
    if (r.status === 0 && line.startsWith("{")) row = JSON.parse(line) as TargetResult;
    else {
      // A dead or killed child: the run found a crash or a hang that no case returned from.
      const killed = r.signal === "SIGTERM" && r.error !== undefined;
      row = {
        target: name, reads, cases: runs, loaded: 0, refused: 0, crashes: killed ? 0 : 1, hangs: killed ? 1 : 0, slowestMs: 0, peakRssMiB: 0,
        seconds: Math.round((performance.now() - t0) / 1000), examples: [`child ${r.signal ?? `exit ${r.status}`}: ${(r.stderr ?? "").slice(-500)}`],
      };
    }
    rows.push(row);
    console.log(`${row.crashes} crashes, ${row.hangs} hangs, slowest ${row.slowestMs} ms, peak RSS ${row.peakRssMiB} MiB, ${row.seconds} s`);
    for (const e of row.examples) console.log(`  ${e}`);
  }
  const machine = machineInfo(values.tag);
  const date = new Date().toISOString();
  const md = markdown(rows, machine, date, seed);
  mkdirSync(values.out!, { recursive: true });
  const base = join(values.out!, `fuzz-files-${machine.tag}`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ suite: "fuzz-files", version: 1, date, machine, seed, hangMs: HANG_MS, rows }, null, 2)}\n`);
  writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwrote ${base}.json and ${base}.md`);
  process.exit(rows.some((r) => r.crashes > 0 || r.hangs > 0) ? 1 : 0);
}
