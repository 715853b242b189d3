// launch_parallel_train.ts: what the tests of `kiln train`'s parallel layouts share (launch_train_zero.test.ts,
// launch_train_tp.test.ts): launch_train.ts's tiny run with its config edited (a parallel: section, another
// model), the single-process `kiln train` and `kiln launch --nproc N -- kiln train` of it (real processes,
// bounded; the ranks' pids collected for cleanUpLaunches), the largest loss difference of two curves, and one
// single-process reference shared by a file's tests (sharedSingle: each reference run is a few seconds of CPU).

import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";
import { join } from "node:path";
import type { CheckpointTensor } from "../../src/train/checkpoint/index.js";
import { listCheckpoints, loadCheckpoint } from "../../src/train/checkpoint/index.js";
import type { Ended } from "./launch_procs.js";
import { start } from "./launch_procs.js";
import type { TinyOptions } from "./launch_train.js";
import { childRanks, kilnArgs, lossCurve, rankPids, tempDirs, tinyTrainDir } from "./launch_train.js";

/** launch_train.ts's tiny run (registered for cleanup) with its config changed by `edit`. */
export function editedRun(o: TinyOptions, edit: (cfg: Record<string, unknown>) => void): { dir: string; config: string } {
  const run = tinyTrainDir(o);
  tempDirs.push(run.dir);
  const cfg = JSON.parse(readFileSync(run.config, "utf8")) as Record<string, unknown>;
  edit(cfg);
  writeFileSync(run.config, JSON.stringify(cfg, null, 2));
  return run;
}

/** `kiln train --config CONFIG --json ARGS` as one process (`env`: added variables); rejects past `limitMs` (its group killed). */
export function trainOnce(config: string, limitMs: number, args: readonly string[] = [], env: Record<string, string> = {}): Promise<Ended> {
  return start(process.execPath, kilnArgs("train", "--config", config, "--json", ...args), limitMs, { ...process.env, ...env }).ended;
}

/** The parameter count `kiln train --json` reported in its start event (a tensor-parallel rank's: its slices). */
export function startParams(stdout: string): number {
  const line = stdout.split("\n").find((l) => l.includes('"kind":"start"'));
  if (!line) throw new Error(`no start event in:\n${stdout}`);
  return (JSON.parse(line.slice(line.indexOf("{"))) as { params: number }).params;
}

/** `kiln launch --nproc N -- kiln train --config CONFIG --json ARGS`; the ranks' pids go to rankPids for cleanup. */
export async function trainLaunched(nproc: number, config: string, limitMs: number, ...args: string[]): Promise<Ended> {
  const run = start(process.execPath, kilnArgs("launch", "--nproc", String(nproc), "--", process.execPath, ...kilnArgs("train", "--config", config, "--json", ...args)), limitMs);
  const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => rankPids.add(r.pid)), 100);
  return run.ended.finally(() => clearInterval(seen));
}

/** The largest |loss difference| over the steps of `ref`, which `got` must all have (else it throws naming the first missing). */
export function maxLossDiff(ref: ReadonlyMap<number, number>, got: ReadonlyMap<number, number>): number {
  let most = 0;
  for (const [step, loss] of ref) {
    const other = got.get(step);
    if (other === undefined) throw new Error(`step ${step} is missing from the parallel run's curve (it has ${[...got.keys()].join(", ")})`);
    most = Math.max(most, Math.abs(loss - other));
  }
  return most;
}

export { lossCurve };

/** A single-process `kiln train` started once and compared with by several tests of one file (sharedSingle). */
export interface SharedSingle {
  readonly run: { dir: string; config: string };
  readonly ended: Promise<Ended>;
}

/**
 * The single-process `kiln train` of a tiny run edited by `edit`, started now (in a file's beforeAll) so that the
 * file's tests compare their launched runs with one reference instead of each starting its own. Its folder is
 * registered for cleanup like editedRun's; a failure shows in every test that awaits it (and nowhere else).
 */
export function sharedSingle(o: TinyOptions, edit: (cfg: Record<string, unknown>) => void, limitMs = 50_000): SharedSingle {
  const run = editedRun(o, edit);
  const ended = trainOnce(run.config, limitMs);
  ended.catch(() => {}); // NOTE: awaited by the tests later; not an unhandled rejection meanwhile.
  return { run, ended };
}

/**
 * The single-process `kiln train` of a tiny run edited by `edit` beside `kiln launch --nproc N` of the same run
 * with `parallel`, at once: both exit 0, the launched one names its layout (`layout`), the single run's curve has
 * every step, and the launched curve is within `tol` of it (printed under `label`). Returns both runs' ends and
 * the runs (for their files), and the single run's curve. With `reference` (sharedSingle of the same iters,
 * every and edit), that run is the single one instead of a new one.
 */
export async function launchedMatchesSingle(o: {
  readonly iters: number;
  readonly every: number;
  readonly edit: (cfg: Record<string, unknown>) => void;
  readonly parallel: Record<string, number>;
  readonly nproc: number;
  readonly layout: RegExp;
  readonly label: string;
  readonly tol: number;
  readonly reference?: SharedSingle;
  /** Each run's bound (default 50 s). */
  readonly limitMs?: number;
}) {
  const single = o.reference?.run ?? editedRun({ iters: o.iters, every: o.every }, o.edit);
  const parallel = editedRun({ iters: o.iters, every: o.every }, (c) => (o.edit(c), (c.parallel = o.parallel)));
  const limit = o.limitMs ?? 50_000;
  const [one, two] = await Promise.all([o.reference?.ended ?? trainOnce(single.config, limit), trainLaunched(o.nproc, parallel.config, limit)]);
  expect(one.code, one.stderr).toBe(0);
  expect(two.code, two.stderr).toBe(0);
  expect(two.stderr).toMatch(o.layout);
  const ref = lossCurve(one.stdout);
  expect(ref.size).toBe(o.iters);
  const diff = maxLossDiff(ref, lossCurve(two.stdout));
  console.log(`${o.label} vs one process: max |loss difference| over ${o.iters} steps ${diff.toExponential(2)}`);
  expect(diff).toBeLessThan(o.tol);
  return { one, two, single, parallel, ref };
}

/**
 * A parallel run's checkpoints resumed two ways, at once: as one process (its config without the parallel:
 * section, over the same checkpoint dir) and, launched on `nproc` ranks, from a copy of them under `again`
 * (another tiny run with the parallel layout). Returns both runs' ends, the single process's first.
 */
export function resumeBothWays(run: { dir: string; config: string }, again: { dir: string; config: string }, nproc: number, limitMs: number): Promise<[Ended, Ended]> {
  cpSync(join(run.dir, "ck"), join(again.dir, "ck"), { recursive: true });
  const solo = join(run.dir, "solo.json");
  const cfg = JSON.parse(readFileSync(run.config, "utf8")) as Record<string, unknown>;
  delete cfg.parallel;
  writeFileSync(solo, JSON.stringify(cfg));
  return Promise.all([trainOnce(solo, limitMs, ["--resume"]), trainLaunched(nproc, again.config, limitMs, "--resume")]);
}

/**
 * The newest checkpoint under `ckDir` (the single process's form) as name -> values: the model's tensors by name,
 * the optimizer's flat arrays as `optimizer.NAME` (AdamW's m and v over the whole flat layout).
 */
export function newestCheckpointArrays(ckDir: string): { step: number; arrays: Map<string, Float32Array> } {
  const newest = listCheckpoints(ckDir).steps[0];
  if (!newest) throw new Error(`no checkpoint under ${ckDir}`);
  const c = loadCheckpoint(newest.dir);
  const f32 = (t: CheckpointTensor) => new Float32Array(t.bytes.slice().buffer);
  const arrays = new Map<string, Float32Array>(c.model.tensors.map((t) => [t.name, f32(t)]));
  for (const t of c.optimizer.tensors) arrays.set(`optimizer.${t.name}`, f32(t));
  return { step: c.step, arrays };
}

/** The largest |difference| over every array of `ref`, which `got` must have with the same length (else it throws naming it), and where. */
export function maxArrayDiff(ref: ReadonlyMap<string, Float32Array>, got: ReadonlyMap<string, Float32Array>): { diff: number; name: string } {
  let worst = { diff: 0, name: "" };
  for (const [name, a] of ref) {
    const b = got.get(name);
    if (!b || b.length !== a.length) throw new Error(`'${name}' (${a.length} values) is ${b ? `${b.length} values` : "missing"} in the other checkpoint (it has ${[...got.keys()].join(", ")})`);
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      if (!(d <= worst.diff)) worst = { diff: Number.isNaN(d) ? Infinity : d, name };
    }
  }
  return worst;
}

/**
 * launchedMatchesSingle for runs that also compare their final weights: both runs write a checkpoint at their last
 * step (the parallel one in the single process's form), and every model tensor and optimizer array must agree
 * within `weightTol`. `limitMs` bounds each run (8 rank processes on a loaded 2-core host start slowly).
 */
export async function launchedMatchesSingleWeights(o: Parameters<typeof launchedMatchesSingle>[0] & { readonly limitMs: number; readonly weightTol: number; readonly args?: readonly string[] }) {
  const single = editedRun({ iters: o.iters, every: o.every }, o.edit);
  const parallel = editedRun({ iters: o.iters, every: o.every }, (c) => (o.edit(c), (c.parallel = o.parallel)));
  const [one, two] = await Promise.all([trainOnce(single.config, o.limitMs, o.args), trainLaunched(o.nproc, parallel.config, o.limitMs, ...(o.args ?? []))]);
  expect(one.code, one.stderr).toBe(0);
  expect(two.code, two.stderr).toBe(0);
  expect(two.stderr).toMatch(o.layout);
  const ref = lossCurve(one.stdout);
  const diff = maxLossDiff(ref, lossCurve(two.stdout));
  const a = newestCheckpointArrays(join(single.dir, "ck"));
  const b = newestCheckpointArrays(join(parallel.dir, "ck"));
  expect(b.step).toBe(a.step);
  const w = maxArrayDiff(a.arrays, b.arrays);
  console.log(`${o.label} vs one process: max |loss difference| over ${ref.size} steps ${diff.toExponential(2)}; final weights and AdamW state (step ${a.step}) ${w.diff.toExponential(2)} (in ${w.name})`);
  expect(diff).toBeLessThan(o.tol);
  expect(w.diff).toBeLessThan(o.weightTol);
  return { one, two, single, parallel, ref, weights: w };
}
