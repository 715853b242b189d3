// browser_threads.ts is the in-browser cpu thread benchmark (`npm run bench:browser:threads`): the built
// demo page in headless Chromium on the cpu backend, one browser per thread count (?threads=1, ?threads=N),
// greedy from "Once upon a time", the pages taking turns run by run (alternating, so a change in the
// machine's load hits every count alike). Each model: the bundled stories260K, and any GGUF given with
// --model (picked on the page as a person would). It reports median decode tokens/s and TTFT per count,
// the ratio to one thread, whether the worker threads joined, and the load average before and after;
// it fails when the counts give different greedy text. Writes bench/results/browser-threads-<tag>.json/.md.
//
//   npx tsx bench/browser_threads.ts [--threads 1,2] [--model FILE.gguf]... [--rounds 5] [--tokens 64] [--quick] [--out DIR] [--tag NAME]

import { loadavg } from "node:os";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { Browser, ElementHandle, Page } from "puppeteer-core";
import type { CpuPoolStats } from "../src/index.js";
import type { GenerateOutcome } from "../apps/web/src/protocol.js";
import { buildApp, launchBrowser, startPreview } from "../test/e2e/helpers.js";
import { parseBenchArgs } from "./lib/args.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

const USAGE = "usage: tsx bench/browser_threads.ts [--threads 1,2] [--model FILE.gguf]... [--rounds R] [--tokens T] [--quick] [--out DIR] [--tag NAME]";
const PROMPT = "Once upon a time";

interface Row {
  readonly model: string;
  readonly threads: number;
  readonly runs: number;
  readonly tokensPerSecond: number;
  readonly ttftMs: number;
  /** Every run's decode tokens/s, in order (alternating with the other counts). */
  readonly all: readonly number[];
  readonly ratio: number;
  readonly pool: CpuPoolStats;
}

const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");

/** Opens the page on cpu with `threads`, loads `model` (a GGUF path) when given; returns it ready to generate. */
async function openPage(browser: Browser, url: string, threads: number, model: string | undefined, tokens: number): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(600_000);
  page.on("error", (e) => console.error(`threads=${threads}: the page crashed: ${e.message}`));
  page.on("console", (m) => void (m.type() === "error" && console.error(`threads=${threads}: console: ${m.text()}`)));
  await page.goto(`${url}?backend=cpu&threads=${threads}`, { waitUntil: "load" });
  await page.waitForFunction(() => window.kilnDemo !== undefined);
  await page.evaluate(() => window.kilnDemo!.ready);
  const got = await page.evaluate(() => window.kilnDemo!.backend()?.threads);
  if (got !== threads) throw new Error(`the page runs on ${got} threads, not the ${threads} asked for: ${await page.$eval("#adapter", (e) => e.textContent)}`);
  if (model) {
    const name = basename(model);
    await ((await page.$("#files")) as ElementHandle<HTMLInputElement>).uploadFile(model);
    await page.waitForFunction((n) => window.kilnDemo!.model()?.files.includes(n) || document.querySelector("#message")?.className === "error", {}, name);
    if (!(await page.evaluate((n) => window.kilnDemo!.model()?.files.includes(n), name))) throw new Error(`${name}: ${await page.$eval("#message", (e) => e.textContent)}`);
  }
  await page.$eval("#temperature", (e) => ((e as HTMLInputElement).value = "0"));
  await page.$eval("#max-tokens", (e, n) => ((e as HTMLInputElement).value = String(n)), tokens);
  await page.$eval("#prompt", (e, p) => ((e as HTMLTextAreaElement).value = p), PROMPT);
  return page;
}

/** browsers[i] runs counts[i]: one browser each, as two same-origin tabs may share one renderer's memory (two 85.7M models crashed it). */
async function measureModel(browsers: readonly Browser[], url: string, counts: readonly number[], model: string | undefined, rounds: number, tokens: number): Promise<Row[]> {
  const label = model ? basename(model) : "stories260K (bundled)";
  const pages: Page[] = [];
  try {
    for (const [i, t] of counts.entries()) pages.push(await openPage(browsers[i]!, url, t, model, tokens));
    const outs: GenerateOutcome[][] = counts.map(() => []);
    // NOTE: one run each first (JIT warm-up, first buffer shares), not counted; then the pages alternate.
    for (let r = 0; r <= rounds; r++) {
      for (let i = 0; i < counts.length; i++) {
        const o = await pages[i]!.evaluate(() => window.kilnDemo!.generate());
        if (r > 0) outs[i]!.push(o);
        console.log(`  ${label} threads=${counts[i]} run ${r}${r === 0 ? " (warm-up)" : ""}: ${o.tokensPerSecond.toFixed(1)} tok/s, load ${load()}`);
      }
    }
    const texts = new Set(outs.map((o) => o[0]!.text));
    if (texts.size > 1) throw new Error(`${label}: the thread counts gave different greedy text: ${JSON.stringify([...texts])}`);
    const base = median(outs[0]!.map((o) => o.tokensPerSecond));
    // NOTE: awaited here, so the pages are still open (finally) while their pool stats are read.
    return await Promise.all(counts.map(async (threads, i) => {
      const tps = median(outs[i]!.map((o) => o.tokensPerSecond));
      return {
        model: label, threads, runs: rounds, tokensPerSecond: tps, ttftMs: median(outs[i]!.map((o) => o.ttftMs)),
        all: outs[i]!.map((o) => o.tokensPerSecond), ratio: tps / base, pool: await pages[i]!.evaluate(() => window.kilnDemo!.cpuPool()),
      };
    }));
  } finally {
    for (const p of pages) await p.close();
  }
}

const f1 = (x: number) => x.toFixed(1);

try {
  const args = parseBenchArgs(process.argv.slice(2), USAGE, ["threads", "model", "rounds", "tokens"]);
  const rounds = Number(args.lists.rounds!.at(-1) ?? (args.quick ? 2 : 5));
  const tokens = Number(args.lists.tokens!.at(-1) ?? 64);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer\n${USAGE}`);
  if (!Number.isInteger(tokens) || tokens < 2) throw new Error(`--tokens must be an integer of at least 2\n${USAGE}`);
  const machine = machineInfo(args.tag);
  const models = [undefined, ...args.lists.model!.map((m) => resolve(m))];
  const loadBefore = load();
  const dist = await buildApp("bench-browser-threads");
  const preview = await startPreview(dist);
  const browsers: Browser[] = [];
  const browser = await launchBrowser({ webgpu: false });
  browsers.push(browser);
  const rows: Row[] = [];
  let chromium = "Chromium";
  let cores = 0;
  try {
    chromium = await browser.version();
    const probe = await browser.newPage();
    await probe.goto(preview.url);
    cores = await probe.evaluate(() => navigator.hardwareConcurrency);
    await probe.close();
    const listed = args.lists.threads!.flatMap((s) => s.split(",")).map(Number);
    const counts = listed.length > 0 ? listed : [1, Math.min(cores, 8)];
    if (counts.some((c) => !Number.isInteger(c) || c < 1) || counts[0] !== 1) throw new Error(`--threads must list counts starting with 1 (the ratios' base), got ${JSON.stringify(listed)}`);
    while (browsers.length < counts.length) browsers.push(await launchBrowser({ webgpu: false }));
    for (const model of models) {
      console.log(`${model ?? "stories260K"}: threads ${counts.join(" vs ")}, ${rounds} alternating rounds of ${tokens} tokens…`);
      rows.push(...(await measureModel(browsers, preview.url, counts, model, rounds, tokens)));
    }
  } finally {
    for (const b of browsers) await b.close();
    await preview.close();
    rmSync(dist, { recursive: true, force: true });
  }
  const loadAfter = load();
  const md = [
    `In-browser cpu backend, threads compared: greedy from "${PROMPT}", ${tokens} tokens, the demo page in headless ${chromium}`,
    `(navigator.hardwareConcurrency ${cores}) on ${machine.cpu} (${machine.cores} cores), ${machine.os}, ${new Date().toISOString()}.`,
    `Medians of ${rounds} runs per count after a warm-up run, the pages alternating run by run. Load average (1/5/15 min)`,
    `before ${loadBefore}, after ${loadAfter}: a loaded machine shared with other work, so read the ratios, not the speeds.`,
    "",
    "| model | threads | decode tok/s (median) | vs 1 thread | TTFT ms (median) | workers started / joined | decode tok/s, every run |",
    "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ...rows.map((r) => `| ${r.model} | ${r.threads} | ${f1(r.tokensPerSecond)} | ${r.ratio.toFixed(2)}x | ${f1(r.ttftMs)} | ${r.pool.workersStarted} / ${r.pool.workersJoined} | ${r.all.map(f1).join(", ")} |`),
    "",
  ].join("\n");
  mkdirSync(args.out, { recursive: true });
  const base = join(args.out, `browser-threads-${machine.tag}`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ suite: "browser-threads", version: 1, date: new Date().toISOString(), machine, chromium, hardwareConcurrency: cores, loadBefore, loadAfter, prompt: PROMPT, tokens, rows }, null, 2)}\n`);
  writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwrote ${base}.json and ${base}.md`);
  process.exit(0);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
