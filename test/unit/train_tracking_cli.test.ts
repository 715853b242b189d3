// train_tracking_cli.test.ts: `kiln runs` on a database the test fills through the tracker API (once
// through the launcher, the rest in-process to keep the file fast): list, show, an A/B of two learning rates, errors that name the
// file or the run, and `plot` writing an SVG that headless Chromium draws with the curves inside
// the plot area, and a PNG.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runsCommand } from "../../src/cli/runs_command.js";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { launchBrowser, saveScreenshot } from "../e2e/helpers.js";
import { kiln } from "../helpers/kiln_cli.js";
import { chromiumMissing, sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

const noSqlite = sqliteMissing();
const dir = mkdtempSync(join(tmpdir(), "kiln-runs-cli-"));
const db = join(dir, "runs.sqlite");
const STEPS = 40;
const ids: Record<string, string> = {};

/** A loss curve that falls faster with a larger learning rate; step 0 is the same for both. */
const lossAt = (step: number, lr: number): number => 1.9 + 2.3 * Math.exp(-step * lr * 30);

/** `kiln runs ...` in this process: its exit code and what it printed. */
async function runs(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((m: unknown) => void out.push(String(m)));
  const error = vi.spyOn(console, "error").mockImplementation((m: unknown) => void err.push(String(m)));
  try {
    const code = await runsCommand.run(args).catch((e: Error) => {
      err.push(e.message);
      return 2;
    });
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

beforeAll(() => {
  if (noSqlite) return;
  const store = RunStore.open(db, { create: true });
  for (const [name, lr] of [["lr-low", 1e-3], ["lr-high", 4e-3]] as const) {
    const run = store.startRun({ name, config: { model: { layers: 4 }, optimizer: { lr, beta2: 0.99 } }, seed: 7, backend: "cpu", codeVersion: "test" });
    for (let s = 0; s < STEPS; s++) run.log(s, { loss: lossAt(s, lr), lr });
    if (name === "lr-high") {
      writeFileSync(join(dir, "ckpt.bin"), "abc");
      run.artifact({ kind: "checkpoint", path: join(dir, "ckpt.bin"), step: STEPS - 1 });
    }
    run.finish();
    ids[name] = run.id;
  }
  store.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!!noSqlite)(`kiln runs${skipLabel(noSqlite)}`, () => {
  it("list (through the launcher) shows each run with its status, steps and final loss", async () => {
    const { code, stdout } = await kiln("runs", "list", "--db", db);
    expect(code).toBe(0);
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+BACKEND\s+SEED\s+STEPS\s+LOSS/);
    expect(lines[1]).toMatch(new RegExp(`^${ids["lr-low"]}\\s+lr-low\\s+finished\\s+cpu\\s+7\\s+${STEPS - 1}\\s+${Number(lossAt(STEPS - 1, 1e-3).toPrecision(5))}\\s`));
    expect(lines).toHaveLength(3);
  });

  it("show prints the record, the config, each metric and the artifacts with their checksums", async () => {
    const { code, stdout } = await runs("show", "lr-high", "--db", db);
    expect(code).toBe(0);
    expect(stdout).toContain(`run ${ids["lr-high"]} (lr-high)`);
    expect(stdout).toContain('"lr": 0.004');
    expect(stdout).toMatch(/loss\s+40\s+4\.2\s+\S+\s+\S+ @ 39/);
    expect(stdout).toContain("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("compare gives an A/B of two learning rates: the differing config field, final values and A−B", async () => {
    const { code, stdout } = await runs("compare", "lr-low", "lr-high", "--db", db, "--rows", "3");
    expect(code).toBe(0);
    expect(stdout).toMatch(/optimizer\.lr\s+0\.001\s+0\.004/);
    expect(stdout).not.toContain("beta2");
    const [a, b] = [lossAt(STEPS - 1, 1e-3), lossAt(STEPS - 1, 4e-3)];
    const row = stdout.split("\n").find((l) => l.startsWith("loss "))!.trim().split(/\s+/);
    expect(Number(row[1])).toBeCloseTo(a, 3);
    expect(Number(row[2])).toBeCloseTo(b, 3);
    expect(Number(row[3])).toBeCloseTo(a - b, 3);
    expect(Number(row[3])).toBeGreaterThan(0);
    const steps = stdout.slice(stdout.indexOf("loss at matching steps:")).trim().split("\n").slice(2).map((l) => Number(l.split(/\s+/)[0]));
    expect(steps).toEqual([0, 20, 39]);
  });

  it("an unknown run, a missing or non-SQLite database exit 1 with a message naming it", async () => {
    let r = await runs("show", "lr-hihg", "--db", db);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`runs show: no run 'lr-hihg' in ${db} (did you mean lr-high`);
    writeFileSync(join(dir, "junk.sqlite"), "x".repeat(4096));
    r = await runs("list", "--db", join(dir, "junk.sqlite"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, "junk.sqlite")} is not a kiln runs database`);
    r = await runs("compare", "lr-low", "--db", db);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("runs compare: takes two runs, RUN_A RUN_B, got lr-low");
  });

  describe.skipIf(!!chromiumMissing())(`plot (headless Chromium)${skipLabel(chromiumMissing())}`, () => {
    it("writes an SVG with one curve per run, every point inside the plot area", async () => {
      const out = join(dir, "curves.svg");
      const { code, stdout } = await runs("plot", "lr-low", "lr-high", "--db", db, "--log", "--out", out);
      expect(code).toBe(0);
      expect(stdout).toContain(`wrote ${out}: loss of 2 runs`);
      expect(readFileSync(out, "utf8")).toMatch(/^<svg /);
      const browser = await launchBrowser({ webgpu: false });
      try {
        const page = await browser.newPage();
        await page.setViewport({ width: 800, height: 480 });
        await page.goto(pathToFileURL(out).href, { waitUntil: "load" });
        const drawn = await page.evaluate(() => {
          const area = document.querySelector("rect.plot-area")!.getBoundingClientRect();
          const curves = Array.from(document.querySelectorAll("polyline.curve")).map((p) => {
            const box = p.getBoundingClientRect();
            return { run: p.getAttribute("data-run"), points: (p as SVGPolylineElement).points.numberOfItems, box: [box.left, box.top, box.right, box.bottom] };
          });
          return { area: [area.left, area.top, area.right, area.bottom], curves, xTicks: document.querySelectorAll("line.x-tick").length,
            yTicks: document.querySelectorAll("line.y-tick").length, legend: Array.from(document.querySelectorAll(".legend-entry text")).map((t) => t.textContent) };
        });
        await saveScreenshot(page, "runs-plot");
        expect(drawn.curves.map((c) => [c.run, c.points])).toEqual([[`lr-low (${ids["lr-low"]})`, STEPS], [`lr-high (${ids["lr-high"]})`, STEPS]]);
        expect(drawn.legend).toEqual([`lr-low (${ids["lr-low"]})`, `lr-high (${ids["lr-high"]})`]);
        expect(drawn.xTicks).toBeGreaterThanOrEqual(3);
        expect(drawn.yTicks).toBeGreaterThanOrEqual(2);
        const [l, t, r, b] = drawn.area as [number, number, number, number];
        for (const c of drawn.curves) {
          const [cl, ct, cr, cb] = c.box as [number, number, number, number];
          expect(cl).toBeGreaterThanOrEqual(l - 1);
          expect(ct).toBeGreaterThanOrEqual(t - 1);
          expect(cr).toBeLessThanOrEqual(r + 1);
          expect(cb).toBeLessThanOrEqual(b + 1);
          // NOTE: a curve spans the whole x range (steps 0..39 are the axis's ends) and a good part of the height.
          expect(cr - cl).toBeGreaterThan((r - l) * 0.95);
          expect(cb - ct).toBeGreaterThan((b - t) * 0.3);
        }
      } finally {
        await browser.close();
      }
    }, 30_000);

    it("writes a PNG of the same picture through Chromium", async () => {
      const out = join(dir, "curves.png");
      const { code } = await runs("plot", "lr-low", "lr-high", "--db", db, "--out", out);
      expect(code).toBe(0);
      const png = readFileSync(out);
      expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([800, 480]);
      // NOTE: a blank 800x480 PNG compresses to a few KB; axes, labels and two anti-aliased curves do not.
      expect(png.length).toBeGreaterThan(10_000);
    }, 30_000);
  });
});
