// train_tracking_store.test.ts: the runs database (src/train/tracking): a run's record and metrics
// round-trip, artifacts carry their checksum, bad input and unusable files give errors that name
// them, and two processes logging to one file at once lose no rows.

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { SCHEMA_VERSION } from "../../src/train/tracking/schema.js";
import { sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

const WRITER = fileURLToPath(new URL("../helpers/tracking_writer.ts", import.meta.url));
const stores: RunStore[] = [];
const tmp = (): string => mkdtempSync(join(tmpdir(), "kiln-runs-"));

function open(file: string): RunStore {
  const s = RunStore.open(file, { create: true });
  stores.push(s);
  return s;
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

const noSqlite = sqliteMissing();

describe.skipIf(!!noSqlite)(`RunStore${skipLabel(noSqlite)}`, () => {
  it("records a run's config, seed, code version, backend and status, and its metrics by step", () => {
    const store = open(join(tmp(), "runs.sqlite"));
    const run = store.startRun({ name: "lr-1e-3", config: { lr: 1e-3, model: { layers: 4 } }, seed: 1337, backend: "cpu" });
    run.log(0, { loss: 4.2, lr: 0 });
    run.log(1, { loss: 3.9, lr: 1e-4, grad_norm: Number.NaN });
    run.log(1, { loss: 3.8 }); // a repeated key at a step replaces the value
    let info = store.find("lr-1e-3");
    expect(info.status).toBe("running");
    expect(info.ended).toBeNull();
    run.finish();
    info = store.find(run.id);
    expect(info).toMatchObject({ id: run.id, name: "lr-1e-3", config: { lr: 1e-3, model: { layers: 4 } }, seed: 1337, backend: "cpu", status: "finished" });
    expect(info.codeVersion).toMatch(/^(git \S+|kiln \d+\.\d+\.\d+)$/);
    expect(info.ended).toBeGreaterThanOrEqual(info.created);
    expect(store.metricKeys(run.id)).toEqual(["grad_norm", "loss", "lr"]);
    expect(store.series(run.id, "loss")).toEqual([[0, 4.2], [1, 3.8]]);
    expect(store.series(run.id, "grad_norm")[0]![1]).toBeNaN();
    expect(store.metricRows(run.id)).toBe(5);
  });

  it("registers an artifact with the file's sha256 and size", () => {
    const dir = tmp();
    const store = open(join(dir, "runs.sqlite"));
    const run = store.startRun({ config: {}, backend: "cpu" });
    writeFileSync(join(dir, "model.bin"), "abc");
    run.artifact({ kind: "checkpoint", path: join(dir, "model.bin"), step: 10 });
    // NOTE: the FIPS 180-2 test vector for "abc".
    expect(store.artifacts(run.id)).toEqual([{ step: 10, kind: "checkpoint", path: join(dir, "model.bin"), bytes: 3,
      sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" }]);
    expect(() => run.artifact({ kind: "export", path: join(dir, "missing.gguf") })).toThrow(/missing\.gguf: no such file/);
  });

  it("rejects bad metrics, steps and statuses with the name of what was wrong", () => {
    const store = open(join(tmp(), "runs.sqlite"));
    const run = store.startRun({ config: {}, backend: "cpu" });
    expect(() => run.log(-1, { loss: 1 })).toThrow(/step must be a non-negative integer, got -1/);
    expect(() => run.log(0, { loss: "1" as unknown as number })).toThrow(/metric 'loss' is string, not a number/);
    expect(() => run.finish("done" as "finished")).toThrow(/status must be one of finished, failed, killed, got 'done'/);
    expect(() => store.startRun({ config: {}, backend: "cpu", seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(store.metricRows(run.id)).toBe(0);
  });

  it("names an unknown run and suggests close ids and names", () => {
    const file = join(tmp(), "runs.sqlite");
    const store = open(file);
    store.startRun({ name: "baseline", config: {}, backend: "cpu" });
    const b = store.startRun({ name: "lr-high", config: {}, backend: "cpu" });
    expect(store.find(b.id.slice(0, 4)).name).toBe("lr-high");
    expect(() => store.find("baselin")).toThrow(`no run 'baselin' in ${file} (did you mean baseline?)`);
    expect(() => store.find("zzzzzzzzzzzz")).toThrow(/kiln runs list shows the runs/);
  });

  it("refuses a file that is not SQLite, one from a newer schema, and a missing one, naming the file", () => {
    const dir = tmp();
    writeFileSync(join(dir, "notes.txt"), "these are not the runs you are looking for\n".repeat(100));
    expect(() => RunStore.open(join(dir, "notes.txt"))).toThrow(`${join(dir, "notes.txt")} is not a kiln runs database: not an SQLite file`);
    const Database = createRequire(import.meta.url)("better-sqlite3") as typeof import("better-sqlite3");
    const newer = new Database(join(dir, "newer.sqlite"));
    newer.pragma("user_version = 99");
    newer.close();
    expect(() => RunStore.open(join(dir, "newer.sqlite"))).toThrow(`${join(dir, "newer.sqlite")} has runs schema version 99, newer than this kiln's ${SCHEMA_VERSION}`);
    expect(() => RunStore.open(join(dir, "none.sqlite"))).toThrow(`no runs database at ${join(dir, "none.sqlite")}`);
  });

  it("two processes logging to one new file at once lose and corrupt nothing", async () => {
    const file = join(tmp(), "runs.sqlite");
    const steps = 300;
    const write = (name: string): Promise<string> => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", WRITER, file, name, String(steps), "2"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d));
      child.stderr.on("data", (d: Buffer) => (err += d));
      child.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`writer ${name} exited ${code}: ${err}`))));
    });
    const ids = await Promise.all([write("a"), write("b")]);
    const store = open(file);
    expect(store.runs().map((r) => r.name).sort()).toEqual(["a", "b"]);
    const [a, b] = ids.map((id) => store.find(id));
    // NOTE: each run's lifetime overlaps the other's, so their writes interleaved.
    expect(a!.created).toBeLessThan(b!.ended!);
    expect(b!.created).toBeLessThan(a!.ended!);
    for (const id of ids) {
      expect(store.find(id).status).toBe("finished");
      expect(store.metricRows(id)).toBe(steps * 5);
      const loss = store.series(id, "loss");
      expect(loss.length).toBe(steps);
      expect(loss[steps - 1]).toEqual([steps - 1, 1 / steps]);
    }
  }, 15_000);
});
