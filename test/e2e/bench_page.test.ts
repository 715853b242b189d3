// bench_page.test.ts: the kernel benchmark page (apps/web/bench.html) in headless Chromium: a quick run
// on WebGPU (SwiftShader here) fills the table and one chart per op, the Download JSON button saves a
// file the CLI's parser accepts, a results JSON from another run overlays its lines with a legend entry,
// and a broken file is reported on the page without stopping it. Saves a screenshot for the docs.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, ElementHandle, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseResults } from "../../bench/lib/results.js";
import { chromiumMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import type { Preview } from "./helpers.js";
import { REPO, buildApp, collectConsoleErrors, launchBrowser, saveScreenshot, startPreview } from "./helpers.js";

// NOTE: the page's protocol declares window.kilnBench; this brings the declaration into this file's types.
import type {} from "../../apps/web/src/bench/bench_protocol.js";

const OVERLAY = join(REPO, "bench", "results", "kernels-cpu-amd-epyc-2c.json");

const noChromium = chromiumMissing();

describe.skipIf(!!noChromium)(`kernel benchmark page (headless Chromium)${skipLabel(noChromium)}`, () => {
  let dist: string | undefined;
  let preview: Preview | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let errors: string[];
  const scratch = mkdtempSync(join(tmpdir(), "kiln-bench-page-"));

  beforeAll(async () => {
    dist = await buildApp("bench");
    preview = await startPreview(dist);
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    errors = collectConsoleErrors(page);
    await page.goto(`${preview.url}bench.html`, { waitUntil: "load" });
    await page.waitForFunction(() => typeof window.kilnBench?.run === "function");
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await preview?.close();
    for (const dir of [scratch, dist]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const text = (sel: string) => page.$eval(sel, (e) => e.textContent ?? "");
  const upload = async (file: string) => (page.$("#load-json") as Promise<ElementHandle<HTMLInputElement>>).then((h) => h.uploadFile(file));

  it("reports a file that is not a results JSON, naming it", async () => {
    const broken = join(scratch, "broken.json");
    writeFileSync(broken, "{ this is not json");
    await upload(broken);
    await page.waitForFunction(() => !document.querySelector<HTMLElement>("#message")!.hidden);
    expect(await text("#message")).toContain("broken.json");
    const wrong = join(scratch, "generate-run.json");
    writeFileSync(wrong, JSON.stringify({ suite: "generate", version: 1 }));
    await upload(wrong);
    await page.waitForFunction(() => document.querySelector("#message")!.textContent!.includes("generate-run.json"));
    expect(await text("#message")).toMatch(/generate-run\.json: not a kernel benchmark result/);
    expect(await page.evaluate(() => window.kilnBench.results().length)).toBe(0);
    await expect(page.evaluate(() => window.kilnBench.run({ backend: "cuda" as "cpu" }))).rejects.toThrow(/backend must be webgpu or cpu, got 'cuda'/);
  });

  it("runs a quick benchmark on WebGPU and fills the table and one chart per op", async () => {
    await page.select("#backend", "webgpu");
    expect(await page.$eval("#quick", (e) => (e as HTMLInputElement).checked)).toBe(true);
    await page.click("#run");
    await page.waitForFunction(() => /done$|error/.test(document.querySelector("#status")!.textContent ?? ""), { timeout: 60_000, polling: 250 });
    expect(await text("#status")).toMatch(/done$/);
    // The page still runs after the broken files: their message is cleared, and WebGPU did not fall back.
    expect(await page.$eval("#message", (e) => (e as HTMLElement).hidden)).toBe(true);

    const [run] = await page.evaluate(() => window.kilnBench.results());
    expect(run!.backend.name).toBe("webgpu");
    const ops = [...new Set(run!.cases.map((c) => c.op))];
    expect(ops).toContain("matmul");

    const rows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => ({ op: (tr as HTMLElement).dataset.op, throughput: Number((tr as HTMLElement).dataset.throughput), cells: tr.children.length })));
    expect(rows.length).toBe(run!.cases.length);
    const matmul = rows.filter((r) => r.op === "matmul");
    expect(matmul.length).toBeGreaterThan(0);
    for (const r of rows) expect(Number.isFinite(r.throughput) && r.throughput > 0).toBe(true);

    const charts = await page.$$eval("#charts svg.chart", (svgs) => svgs.map((s) => ({ op: s.getAttribute("data-op"), paths: s.querySelectorAll("path").length })));
    expect(charts.map((c) => c.op).sort()).toEqual([...ops].sort());
    for (const c of charts) expect(c.paths).toBeGreaterThan(0);
  }, 75_000);

  it("downloads the run as a JSON file that parseResults accepts", async () => {
    const dir = join(scratch, "downloads");
    mkdirSync(dir);
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
    await page.click("#download");
    const [run] = await page.evaluate(() => window.kilnBench.results());
    const name = `kernels-webgpu-${run!.machine.tag}.json`;
    await expect.poll(() => existsSync(join(dir, name)) && !readdirSync(dir).some((f) => f.endsWith(".crdownload")), { timeout: 10_000 }).toBe(true);
    const saved = parseResults(readFileSync(join(dir, name), "utf8"), name);
    expect(saved).toEqual(run);
    expect(run!.machine.tag).toMatch(/^browser-/);
  });

  it("overlays a results JSON from another machine, with a legend entry for it", async () => {
    const overlay = parseResults(readFileSync(OVERLAY, "utf8"), OVERLAY);
    await upload(OVERLAY);
    await page.waitForFunction(() => window.kilnBench.results().length === 2);
    const legend = await text("#charts");
    expect(legend).toContain(`${overlay.backend.name} ${overlay.machine.tag}`);
    expect(legend).toMatch(/webgpu browser-/);
    const runsInMatmul = await page.$eval("#charts svg.chart[data-op=matmul]", (s) => [...new Set(Array.from(s.querySelectorAll("path"), (p) => p.getAttribute("data-run")))].sort());
    expect(runsInMatmul).toEqual(["0", "1"]);
    expect(await page.$eval("#message", (e) => (e as HTMLElement).hidden)).toBe(true);

    // The docs' picture: controls and all four charts, from the top of the page.
    await page.setViewport({ width: 1280, height: 1400 });
    await page.evaluate(() => window.scrollTo(0, 0));
    expect(existsSync(await saveScreenshot(page, "bench-page"))).toBe(true);
    expect(errors).toEqual([]);
  });

  it("starts a quick run on load with ?autorun=1&backend=webgpu", async () => {
    const auto = await browser!.newPage();
    const autoErrors = collectConsoleErrors(auto);
    await auto.goto(`${preview!.url}bench.html?autorun=1&backend=webgpu`, { waitUntil: "load" });
    await auto.waitForFunction(() => /done$|error/.test(document.querySelector("#status")!.textContent ?? ""), { timeout: 60_000, polling: 250 });
    expect(await auto.$eval("#status", (e) => e.textContent)).toMatch(/done$/);
    const runs = await auto.evaluate(() => window.kilnBench.results());
    expect(runs.map((r) => [r.backend.name, r.quick])).toEqual([["webgpu", true]]);
    expect(autoErrors).toEqual([]);
    await auto.close();
  }, 75_000);
});
