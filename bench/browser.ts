// browser.ts is the in-browser generation benchmark (`npm run bench:browser`): the built demo page in
// headless Chromium (Debian's, through puppeteer-core), stories260K greedy from "Once upon a time",
// repeated, on each backend the page can use here: WebGPU (SwiftShader without a GPU: a software
// adapter, for correctness more than speed) and the cpu backend in the page's Worker. It reports the
// median decode tokens/s and time to first token and writes bench/results/browser-<tag>.json and .md.
// The first run of each backend (shader compilation, JIT warm-up) is reported apart from the median.
//
//   npx tsx bench/browser.ts [--backend cpu|webgpu|all] [--quick] [--out bench/results] [--tag NAME]

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GenerateOutcome } from "../apps/web/src/protocol.js";
import { buildApp, launchBrowser, startPreview } from "../test/e2e/helpers.js";
import { parseBenchArgs } from "./lib/args.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

const USAGE = "usage: tsx bench/browser.ts [--backend cpu|webgpu|all] [--quick] [--out DIR] [--tag NAME]";
const PROMPT = "Once upon a time";
const TOKENS = 64;

interface Row {
  readonly backend: string;
  readonly adapter: string;
  readonly runs: number;
  readonly first: { readonly tokensPerSecond: number; readonly ttftMs: number };
  readonly tokensPerSecond: number;
  readonly ttftMs: number;
  readonly text: string;
}

async function measure(url: string, backend: "webgpu" | "cpu", runs: number): Promise<Row> {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${url}?backend=${backend}`, { waitUntil: "load" });
    await page.waitForFunction(() => window.kilnDemo !== undefined);
    await page.evaluate(() => window.kilnDemo!.ready);
    const message = await page.$eval("#message", (e) => ((e as HTMLElement).hidden ? "" : e.textContent ?? ""));
    if (!(await page.evaluate(() => window.kilnDemo!.model()))) throw new Error(`the page did not load the model on ${backend}: ${message}`);
    await page.$eval("#temperature", (e) => ((e as HTMLInputElement).value = "0"));
    await page.$eval("#max-tokens", (e, n) => ((e as HTMLInputElement).value = String(n)), TOKENS);
    await page.$eval("#prompt", (e, p) => ((e as HTMLTextAreaElement).value = p), PROMPT);
    const outs: GenerateOutcome[] = [];
    for (let i = 0; i < runs + 1; i++) outs.push(await page.evaluate(() => window.kilnDemo!.generate()));
    const [first, ...rest] = outs;
    const info = (await page.evaluate(() => window.kilnDemo!.backend()))!;
    return {
      backend: info.name + (info.software ? " (software)" : ""),
      adapter: info.name === "webgpu" ? `${info.vendor ?? ""} ${info.architecture ?? ""}`.trim() : info.device,
      runs,
      first: { tokensPerSecond: first!.tokensPerSecond, ttftMs: first!.ttftMs },
      tokensPerSecond: median(rest.map((o) => o.tokensPerSecond)),
      ttftMs: median(rest.map((o) => o.ttftMs)),
      text: first!.text,
    };
  } finally {
    await browser.close();
  }
}

const f1 = (x: number) => x.toFixed(1);

function markdown(rows: readonly Row[], machine: ReturnType<typeof machineInfo>, chromium: string): string {
  return [
    `In-browser generation: stories260K, greedy, "${PROMPT}", ${TOKENS} tokens, the demo page in headless ${chromium}`,
    `on ${machine.cpu} (${machine.cores} cores), ${machine.os}. Median of ${rows[0]?.runs ?? 0} runs after a first run.`,
    "",
    "| backend | adapter | decode tok/s (median) | TTFT ms (median) | first run tok/s | first run TTFT ms |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.backend} | ${r.adapter} | ${f1(r.tokensPerSecond)} | ${f1(r.ttftMs)} | ${f1(r.first.tokensPerSecond)} | ${f1(r.first.ttftMs)} |`),
    "",
  ].join("\n");
}

try {
  const args = parseBenchArgs(process.argv.slice(2), USAGE);
  const backends = args.backends.filter((b): b is "webgpu" | "cpu" => b === "webgpu" || b === "cpu");
  const runs = args.quick ? 2 : 5;
  const machine = machineInfo(args.tag);
  const dist = await buildApp("bench-browser");
  const preview = await startPreview(dist);
  const rows: Row[] = [];
  let chromium = "Chromium";
  try {
    const b = await launchBrowser();
    chromium = await b.version();
    await b.close();
    for (const backend of backends) {
      console.log(`${backend}: ${runs} runs of ${TOKENS} tokens…`);
      const row = await measure(preview.url, backend, runs);
      console.log(`  ${row.backend} ${row.adapter}: ${f1(row.tokensPerSecond)} tok/s, TTFT ${f1(row.ttftMs)} ms`);
      rows.push(row);
    }
  } finally {
    await preview.close();
    rmSync(dist, { recursive: true, force: true });
  }
  if (new Set(rows.map((r) => r.text)).size > 1) throw new Error(`the backends gave different greedy text: ${JSON.stringify(rows.map((r) => r.text))}`);
  const md = markdown(rows, machine, chromium);
  mkdirSync(args.out, { recursive: true });
  const base = join(args.out, `browser-${machine.tag}`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ suite: "browser", version: 1, date: new Date().toISOString(), machine, chromium, prompt: PROMPT, tokens: TOKENS, rows }, null, 2)}\n`);
  writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwrote ${base}.json and ${base}.md`);
  process.exit(0);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
