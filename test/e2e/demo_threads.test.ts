// demo_threads.test.ts: the demo page's cpu backend on all cores, in headless Chromium. Served with
// COOP/COEP (vite preview) the page is cross-origin isolated: its cpu backend runs on
// navigator.hardwareConcurrency threads (Web Workers over the shared wasm memory, started and taking part
// in tasks), says so, and gives the same greedy text as with ?threads=1. Served without those headers it
// says it runs on one thread, and gives the same text. A bad ?threads= is refused by name.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateOutcome } from "../../apps/web/src/protocol.js";
import { chromiumMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import type { Preview } from "./helpers.js";
import { ARTIFACTS, buildApp, collectConsoleErrors, launchBrowser, startPlainServer, startPreview } from "./helpers.js";

const PROMPT = "Once upon a time";
const MAX_TOKENS = 40;
const noChromium = chromiumMissing();

describe.skipIf(!!noChromium)(`demo page threads (headless Chromium)${skipLabel(noChromium)}`, () => {
  let dist: string | undefined;
  let isolated: Preview | undefined;
  let plain: Preview | undefined;
  let browser: Browser | undefined;
  const metrics: Record<string, unknown> = {};

  beforeAll(async () => {
    [dist, browser] = await Promise.all([buildApp("threads"), launchBrowser({ webgpu: false })]);
    [isolated, plain] = await Promise.all([startPreview(dist), startPlainServer(dist)]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await isolated?.close();
    await plain?.close();
    if (dist) rmSync(dist, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, "demo-threads.json"), `${JSON.stringify(metrics, null, 2)}\n`);
  });

  /** Opens the page on the cpu backend and waits for the default model; returns it with its console errors. */
  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser!.newPage();
    const errors = collectConsoleErrors(page);
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => window.kilnDemo !== undefined);
    await page.evaluate(() => window.kilnDemo!.ready);
    return { page, errors };
  }

  const adapter = (page: Page) => page.$eval("#adapter", (e) => e.textContent ?? "");

  async function greedy(page: Page, label: string): Promise<GenerateOutcome> {
    for (const [sel, v] of [["#temperature", "0"], ["#max-tokens", String(MAX_TOKENS)], ["#prompt", PROMPT]] as const) {
      await page.$eval(sel, (e, value) => ((e as HTMLInputElement).value = value), v);
    }
    const out = await page.evaluate(() => window.kilnDemo!.generate());
    expect(out.tokens, label).toBe(MAX_TOKENS);
    metrics[label] = { ...out, pool: await page.evaluate(() => window.kilnDemo!.cpuPool()) };
    return out;
  }

  it("runs on hardwareConcurrency threads when isolated, with the same greedy text as threads=1", async () => {
    const many = await open(`${isolated!.url}?backend=cpu`);
    const cores = await many.page.evaluate(() => navigator.hardwareConcurrency);
    expect(await many.page.evaluate(() => crossOriginIsolated)).toBe(true);
    // NOTE: this machine's Chromium reports its 2 cores; the default caps at 8 (thread_count.ts).
    expect(cores).toBeGreaterThan(1);
    const threads = Math.min(cores, 8);
    expect(await many.page.evaluate(() => window.kilnDemo!.backend())).toMatchObject({ name: "cpu", threads, isolated: true });
    expect(await adapter(many.page)).toContain(`, ${threads} threads`);
    const manyOut = await greedy(many.page, `cpu, ${threads} threads`);
    // Every worker started, and the decode products were handed to the pool (the classifier's, 128 KiB).
    const pool = await many.page.evaluate(() => window.kilnDemo!.cpuPool());
    expect(pool).toMatchObject({ threads, workersStarted: threads - 1 });
    expect(pool.shared.dots).toBeGreaterThan(0);
    expect(many.errors).toEqual([]);

    const one = await open(`${isolated!.url}?backend=cpu&threads=1`);
    expect(await one.page.evaluate(() => window.kilnDemo!.backend())).toMatchObject({ name: "cpu", threads: 1, isolated: true });
    expect(await adapter(one.page)).toContain("1 thread (as asked: threads=1)");
    const oneOut = await greedy(one.page, "cpu, threads=1");
    expect(await one.page.evaluate(() => window.kilnDemo!.cpuPool())).toMatchObject({ threads: 1, workersStarted: 0, shared: { tiles: 0, dots: 0, qdots: 0 } });
    expect(manyOut.text).toBe(oneOut.text);
    expect(oneOut.text.length).toBeGreaterThan(20);
    expect(one.errors).toEqual([]);
    await Promise.all([many.page.close(), one.page.close()]);
  }, 60_000);

  it("says it runs on one thread when the page is not cross-origin isolated", async () => {
    const { page, errors } = await open(`${plain!.url}?backend=cpu`);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
    expect(await page.evaluate(() => window.kilnDemo!.backend())).toMatchObject({ name: "cpu", threads: 1, isolated: false });
    expect(await adapter(page)).toMatch(/, 1 thread \(the page is not cross-origin isolated/);
    const out = await greedy(page, "cpu, not isolated");
    expect(out.text.length).toBeGreaterThan(20);
    // NOTE: the page asks its own origin for a kiln serve (/v1/models); the plain server answers 404.
    expect(errors.filter((e) => !/404.*\/v1\/models/.test(e))).toEqual([]);
    await page.close();
  }, 40_000);

  it("refuses a threads parameter that is not a count, naming it", async () => {
    const { page } = await open(`${isolated!.url}?backend=cpu&threads=many`);
    expect(await page.$eval("#message", (e) => e.textContent)).toContain('the threads URL parameter must be an integer from 1 to 256, got "many"');
    await page.close();
  }, 30_000);
});
