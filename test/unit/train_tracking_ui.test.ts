// train_tracking_ui.test.ts: the runs page behind `kiln runs ui`: its JSON API (runs, a metric's
// series with NaN as null, errors naming an unknown run) and, in headless Chromium, the page
// overlaying both runs' loss curves and redrawing when a run is unticked.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStore } from "../../src/train/tracking/run_store.js";
import type { RunsServer } from "../../src/train/tracking/runs_server.js";
import { startRunsServer } from "../../src/train/tracking/runs_server.js";
import { collectConsoleErrors, launchBrowser, saveScreenshot } from "../e2e/helpers.js";
import { chromiumMissing, sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

const STEPS = 30;
let store: RunStore;
let server: RunsServer;
const ids: string[] = [];

const noSqlite = sqliteMissing();
const dir = mkdtempSync(join(tmpdir(), "kiln-runs-ui-"));

beforeAll(async () => {
  if (noSqlite) return;
  store = RunStore.open(join(dir, "runs.sqlite"), { create: true });
  for (const lr of [1e-3, 4e-3]) {
    const run = store.startRun({ name: `lr=${lr}`, config: { lr }, backend: "cpu", codeVersion: "test" });
    for (let s = 0; s < STEPS; s++) run.log(s, { loss: 2 + 2 * Math.exp(-s * lr * 40), grad_norm: s === 3 ? Number.NaN : 1 });
    run.finish();
    ids.push(run.id);
  }
  server = await startRunsServer(store);
});

afterAll(async () => {
  await server?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!!noSqlite)(`runs page API${skipLabel(noSqlite)}`, () => {
  it("lists the runs with their metric names", async () => {
    const runs = (await (await fetch(`${server.url}api/runs`)).json()) as { id: string; name: string; metrics: string[] }[];
    expect(runs.map((r) => [r.id, r.name, r.metrics])).toEqual([[ids[0], "lr=0.001", ["grad_norm", "loss"]], [ids[1], "lr=0.004", ["grad_norm", "loss"]]]);
  });

  it("gives a metric's series with NaN as null, and names an unknown run with close matches", async () => {
    const body = (await (await fetch(`${server.url}api/runs/lr=0.001/metrics/grad_norm`)).json()) as { run: string; points: [number, number | null][] };
    expect(body.run).toBe(ids[0]);
    expect(body.points).toHaveLength(STEPS);
    expect(body.points[3]).toEqual([3, null]);
    const res = await fetch(`${server.url}api/runs/lr=0.002/metrics/loss`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/^no run 'lr=0.002' in .*runs\.sqlite \(did you mean lr=0\.001, lr=0\.004\?\)$/);
    expect((await fetch(`${server.url}api/plot.svg`)).status).toBe(400);
    expect((await fetch(`${server.url}api/runs`, { method: "POST" })).status).toBe(405);
  });

  it("answers a malformed escape in the path with 400, and keeps serving", async () => {
    const res = await fetch(`${server.url}api/runs/%E0/metrics/loss`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/URI/);
    expect((await fetch(`${server.url}api/runs`)).status).toBe(200);
  });
});

describe.skipIf(!!(noSqlite ?? chromiumMissing()))(`runs page (headless Chromium)${skipLabel(noSqlite ?? chromiumMissing())}`, () => {
  it("overlays both runs' loss curves and redraws without a run when it is unticked", async () => {
    const browser = await launchBrowser({ webgpu: false });
    try {
      const page = await browser.newPage();
      const errors = collectConsoleErrors(page);
      await page.setViewport({ width: 1000, height: 800 });
      await page.goto(server.url, { waitUntil: "load" });
      await page.waitForFunction(() => document.body.dataset.drawn === "1", { timeout: 10_000 });
      const curves = (): Promise<[string | null, number][]> =>
        page.$$eval("#plot polyline.curve", (ps) => ps.map((p) => [p.getAttribute("data-run"), (p as SVGPolylineElement).points.numberOfItems] as [string | null, number]));
      expect(await page.$eval("#metric", (s) => (s as HTMLSelectElement).value)).toBe("loss");
      expect(await curves()).toEqual([[`lr=0.001 (${ids[0]})`, STEPS], [`lr=0.004 (${ids[1]})`, STEPS]]);
      await saveScreenshot(page, "runs-page");
      await page.click(`#runs input[value="${ids[0]}"]`);
      await page.waitForFunction(() => document.body.dataset.drawn === "2", { timeout: 10_000 });
      expect(await curves()).toEqual([[`lr=0.004 (${ids[1]})`, STEPS]]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 30_000);
});
