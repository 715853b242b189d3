// The runs page from `kiln serve` (runs_routes.ts mounted in the OpenAI server): the real command starts
// with --runs-db naming a database of two runs with different learning rates; its /api/runs lists them
// (and a missing database is a 404 naming the file), and in headless Chromium /runs draws both runs'
// loss curves as two polylines with different points.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { collectConsoleErrors, launchBrowser } from "../e2e/helpers.js";
import { KILN_BIN } from "../helpers/kiln_cli.js";
import { chromiumMissing, sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

const noSqlite = sqliteMissing();
const dir = mkdtempSync(join(tmpdir(), "kiln-serve-runs-"));
const db = join(dir, "runs.sqlite");
const STEPS = 20;
const ids: string[] = [];
let child: ChildProcess | undefined;
let url = "";

/** Starts `kiln serve` on a free port with `flags`; resolves to its base URL once it printed the runs line. */
function startServe(...flags: string[]): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const c = spawn(process.execPath, [KILN_BIN, "serve", "--port", "0", "--backend", "cpu", ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  c.stdout!.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no runs line within 60 s; stdout: ${out}`)), 60_000);
    c.stdout!.on("data", (d: string) => {
      out += d;
      const m = /training runs: (http:\/\/127\.0\.0\.1:\d+)\/runs/.exec(out);
      if (m) (clearTimeout(timer), resolve({ child: c, url: m[1]!, out: () => out }));
    });
    c.once("exit", (code) => reject(new Error(`kiln serve exited early (${code}): ${out}`)));
  });
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  c.kill("SIGTERM");
  await once(c, "exit");
}

beforeAll(async () => {
  if (noSqlite) return;
  const store = RunStore.open(db, { create: true });
  for (const lr of [1e-3, 5e-3]) {
    const run = store.startRun({ name: `lr=${lr}`, config: { optimizer: { lr } }, backend: "cpu", codeVersion: "test" });
    for (let s = 0; s < STEPS; s++) run.log(s, { loss: 1.5 + 3 * Math.exp(-s * lr * 50) });
    run.finish();
    ids.push(run.id);
  }
  store.close();
  ({ child, url } = await startServe("--runs-db", db));
}, 90_000);

afterAll(async () => {
  if (child) await stop(child);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!!noSqlite)(`kiln serve: runs API${skipLabel(noSqlite)}`, () => {
  it("lists the runs at /api/runs and /runs/api/runs, and still serves the OpenAI API", async () => {
    for (const path of ["/api/runs", "/runs/api/runs"]) {
      const runs = (await (await fetch(url + path)).json()) as { id: string; name: string }[];
      expect(runs.map((r) => [r.id, r.name])).toEqual([[ids[0], "lr=0.001"], [ids[1], "lr=0.005"]]);
    }
    const page = await fetch(`${url}/runs`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect((await fetch(`${url}/v1/models`)).status).toBe(200);
  });

  it("a missing database is a 404 naming the file, not a failed start", async () => {
    const missing = join(dir, "none.sqlite");
    const s = await startServe("--runs-db", missing);
    try {
      expect(s.out()).toContain(`(${missing}, not there yet)`);
      const res = await fetch(`${s.url}/api/runs`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: string }).error).toContain(`no runs database at ${missing}`);
    } finally {
      await stop(s.child);
    }
  }, 90_000);
});

const noBrowser = noSqlite ?? chromiumMissing();
describe.skipIf(!!noBrowser)(`kiln serve: runs page (headless Chromium)${skipLabel(noBrowser)}`, () => {
  it("/runs draws both runs' loss curves, with different data", async () => {
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      const errors = collectConsoleErrors(page);
      await page.goto(`${url}/runs`, { waitUntil: "load" });
      await page.waitForFunction(() => document.body.dataset.drawn === "1", { timeout: 15_000 });
      const curves = await page.$$eval("#plot polyline.curve", (ps) => ps.map((p) => [p.getAttribute("data-run"), p.getAttribute("points")] as [string | null, string | null]));
      expect(curves.map(([run]) => run)).toEqual([`lr=0.001 (${ids[0]})`, `lr=0.005 (${ids[1]})`]);
      const [a, b] = curves.map(([, points]) => points!.trim().split(/\s+/));
      expect(a).toHaveLength(STEPS);
      expect(b).toHaveLength(STEPS);
      // Same steps (x), different losses (y): the faster lr's curve is below the other's after the first step.
      expect(a!.map((p) => p.split(",")[0])).toEqual(b!.map((p) => p.split(",")[0]));
      const y = (pts: string[], i: number) => Number(pts[i]!.split(",")[1]);
      expect(y(a!, 0)).toBeCloseTo(y(b!, 0), 3);
      expect(y(b!, STEPS - 1)).toBeGreaterThan(y(a!, STEPS - 1)); // SVG y grows downward: lower loss, larger y
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
