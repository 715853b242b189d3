// demo_page.test.ts: the in-browser demo (apps/web/index.html) in headless Chromium, from `vite preview`
// and from `kiln serve`: greedy text from "Once upon a time" equals what `kiln generate` prints in Node,
// on WebGPU (SwiftShader here), on the cpu fallback when WebGPU is missing (Chromium started without
// it) or its device is lost mid-session, and through the "send to kiln serve" switch; a GGUF file picked on the page loads and gives the
// same text; files that are not a model, or a checkpoint without its tokenizer, get a readable message
// and the page keeps working. No console errors anywhere. Screenshots and tokens/s go to test/artifacts/.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, ElementHandle, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateOutcome } from "../../apps/web/src/protocol.js";
import { loadModel } from "../../src/models/formats/load_model.js";
import { writeGguf } from "../../src/models/formats/gguf_writer.js";
import { kiln } from "../helpers/kiln_cli.js";
import { chromiumMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import type { Served } from "../unit/openai_helpers.js";
import { serve } from "../unit/openai_helpers.js";
import type { Preview } from "./helpers.js";
import { ARTIFACTS, REPO, buildApp, collectConsoleErrors, launchBrowser, saveScreenshot, startPreview } from "./helpers.js";

const PROMPT = "Once upon a time";
const MAX_TOKENS = 40;
// NOTE: SwiftShader compiles an attention kernel per key count, so the WebGPU page stops at 16 tokens (compared
// with kiln generate's 16); the 40-token text is checked on the cpu paths, where a token costs little.
const WEBGPU_TOKENS = 16;
const MODEL_DIR = join(REPO, "models", "stories260K");

const noChromium = chromiumMissing();

describe.skipIf(!!noChromium)(`demo page (headless Chromium)${skipLabel(noChromium)}`, () => {
  let dist: string;
  let preview: Preview | undefined;
  let server: Served | undefined;
  // One Chromium per WebGPU setting for the whole file (a launch is seconds of CPU); each test gets a fresh context.
  const browsers = new Map<boolean, Promise<Browser>>();
  let expected: string;
  let expectedWebgpu: string;
  const scratch = mkdtempSync(join(tmpdir(), "kiln-demo-page-"));
  const metrics: Record<string, GenerateOutcome & { backend: string }> = {};

  beforeAll(async () => {
    const generate = (tokens: number) => kiln("generate", "--model", "stories260K", "--prompt", PROMPT, "--max-tokens", String(tokens), "--temperature", "0", "--backend", "cpu");
    const [built, generated, short] = await Promise.all([
      buildApp("demo"),
      generate(MAX_TOKENS),
      generate(WEBGPU_TOKENS),
      kiln("convert", "--model", "stories260K", "--to", "gguf", "--out", join(scratch, "stories260K.gguf")),
      kiln("convert", "--model", "stories260K", "--to", "hf", "--out", join(scratch, "hf")),
    ]);
    // A GGUF without a tokenizer: the llama2.c checkpoint's weights alone (it has no tokenizer metadata).
    writeGguf(join(scratch, "no-tokenizer.gguf"), loadModel("stories260K"));
    dist = built;
    expect(generated.code, generated.stderr).toBe(0);
    expected = generated.stdout.trim();
    expect(expected.startsWith(PROMPT)).toBe(true);
    expect(short.code, short.stderr).toBe(0);
    expectedWebgpu = short.stdout.trim();
    expect(expected.startsWith(expectedWebgpu) && expectedWebgpu.length > PROMPT.length).toBe(true);
    preview = await startPreview(dist);
    // kiln serve (the OpenAI server over the engine) serving the built page too.
    server = await serve({ staticDir: dist });
  }, 120_000);

  afterAll(async () => {
    for (const b of browsers.values()) await (await b.catch(() => undefined))?.close();
    await preview?.close();
    await server?.close();
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, "demo-metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);
    rmSync(scratch, { recursive: true, force: true });
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  /** Opens the page, waits for the default model, and returns it with its console errors. */
  async function open(url: string, opts: { webgpu?: boolean } = {}): Promise<{ page: Page; errors: string[] }> {
    const webgpu = opts.webgpu !== false;
    if (!browsers.has(webgpu)) browsers.set(webgpu, launchBrowser({ webgpu }));
    const page = await (await (await browsers.get(webgpu)!).createBrowserContext()).newPage();
    await page.setViewport({ width: 1100, height: 820 });
    const errors = collectConsoleErrors(page);
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => window.kilnDemo !== undefined);
    await page.evaluate(() => window.kilnDemo!.ready);
    return { page, errors };
  }

  const text = (page: Page, sel: string) => page.$eval(sel, (e) => (e as HTMLElement).hidden ? "" : e.textContent ?? "");
  const setValue = (page: Page, sel: string, value: string) => page.$eval(sel, (e, v) => ((e as HTMLInputElement).value = v), value);

  async function greedy(page: Page, label: string, tokens = MAX_TOKENS): Promise<GenerateOutcome> {
    await setValue(page, "#temperature", "0");
    await setValue(page, "#max-tokens", String(tokens));
    await setValue(page, "#prompt", PROMPT);
    const out = await page.evaluate(() => window.kilnDemo!.generate());
    metrics[label] = { ...out, backend: (await page.evaluate(() => window.kilnDemo!.backend()?.name)) ?? "?" };
    expect(out.tokens).toBe(tokens);
    expect(await page.$eval("#stats", (e) => e.textContent)).toMatch(new RegExp(`\\b${tokens} tokens · [\\d.]+ tokens/s`));
    return out;
  }

  const upload = async (page: Page, files: string[]) => {
    const input = (await page.$("#files")) as ElementHandle<HTMLInputElement>;
    await input.uploadFile(...files);
  };
  /** Waits until the model line names `id` or the message box shows an error; returns the message. */
  const settled = (page: Page) =>
    page.waitForFunction(() => !document.querySelector<HTMLButtonElement>("#generate")!.disabled && document.querySelector("#progress-row")!.hasAttribute("hidden"));

  it("generates on WebGPU the text kiln generate prints", async () => {
    const { page, errors } = await open(`${preview!.url}?backend=webgpu`);
    const backend = await page.evaluate(() => window.kilnDemo!.backend());
    expect(backend).toMatchObject({ name: "webgpu" });
    expect(await text(page, "#adapter")).toMatch(/swiftshader|\w+/i);
    expect(await text(page, "#model")).toContain("stories260K");
    // The default model's load reported its download (both files, to the last byte) and every tensor's upload.
    const progress = await page.evaluate(() => window.kilnDemo!.lastLoadProgress());
    for (const file of ["stories260K.bin", "tok512.bin"]) {
      const last = progress.filter((p) => p.phase === "download" && p.file === file).at(-1);
      expect(last && last.done === last.total && last.total > 0, file).toBe(true);
    }
    const uploads = progress.filter((p) => p.phase === "upload");
    expect(uploads.at(-1)).toMatchObject({ done: uploads.at(-1)!.total });
    expect(uploads.map((p) => p.done)).toEqual(Array.from({ length: uploads.length }, (_, i) => i + 1));
    expect(await page.$eval("#progress-row", (e) => (e as HTMLElement).hidden)).toBe(true);
    const out = await greedy(page, "webgpu (SwiftShader), vite preview", WEBGPU_TOKENS);
    expect(PROMPT + out.text).toBe(expectedWebgpu);
    expect(await page.$eval("#output", (e) => e.textContent)).toBe(expectedWebgpu);
    await saveScreenshot(page, "demo-webgpu");
    expect(errors).toEqual([]);
  }, 180_000);

  it("recovers from a lost WebGPU adapter by restarting on the cpu backend", async () => {
    const { page, errors } = await open(`${preview!.url}?backend=webgpu`);
    expect(await page.evaluate(() => window.kilnDemo!.simulateDeviceLoss())).toBe(true);
    await setValue(page, "#temperature", "0");
    await setValue(page, "#max-tokens", "4");
    await page.evaluate(() => window.kilnDemo!.generateFromButton());
    expect(await page.evaluate(() => window.kilnDemo!.backend()?.name)).toBe("cpu");
    expect(await text(page, "#message")).toMatch(/The WebGPU adapter was lost \(.*device lost.*\)\. The engine now runs on the cpu backend/);
    expect(await text(page, "#model")).toContain("stories260K");
    expect(PROMPT + (await greedy(page, "cpu after losing WebGPU")).text).toBe(expected);
    // The Worker logs the failed request it could not finish; nothing else may reach the console.
    expect(errors.filter((e) => !/device lost|destroyed/i.test(e))).toEqual([]);
  }, 180_000);

  it("falls back to the cpu backend, saying why, when the browser has no WebGPU", async () => {
    const { page, errors } = await open(preview!.url, { webgpu: false });
    expect(await page.evaluate(() => window.kilnDemo!.backend()?.name)).toBe("cpu");
    expect(await text(page, "#message")).toMatch(/WebGPU is not in use: .*no WebGPU adapter|WebGPU is not in use: .*navigator\.gpu/);
    // vite preview sends COOP/COEP, so the page is isolated (shared memory allowed); the page says its cpu
    // thread count (one per logical CPU here: demo_threads.test.ts checks the threads and their text).
    expect(await page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated)).toBe(true);
    expect(await text(page, "#adapter")).toMatch(/, \d+ threads?\b/);
    const out = await greedy(page, "cpu fallback (no WebGPU), vite preview");
    expect(PROMPT + out.text).toBe(expected);
    await saveScreenshot(page, "demo-no-webgpu");
    expect(errors).toEqual([]);
  }, 120_000);

  it("loads a picked GGUF file, and reports files that are not a model without breaking", async () => {
    // auto: SwiftShader is a software adapter, so the page picks the cpu backend and says so.
    const { page, errors } = await open(preview!.url);
    expect(await page.evaluate(() => window.kilnDemo!.backend()?.name)).toBe("cpu");
    expect(await text(page, "#message")).toContain("software renderer");

    const notModel = join(scratch, "notes.txt");
    writeFileSync(notModel, "this is not a model");
    await upload(page, [notModel]);
    await settled(page);
    expect(await text(page, "#message")).toMatch(/Could not load the model: .*notes\.txt.*not a model kiln reads[\s\S]*Still serving stories260K/);

    const checkpoint = join(scratch, "model.bin");
    copyFileSync(join(MODEL_DIR, "stories260K.bin"), checkpoint);
    await upload(page, [checkpoint]);
    await settled(page);
    expect(await text(page, "#message")).toMatch(/model\.bin: tokenizer: .*add tok512\.bin or tokenizer\.bin/);

    await upload(page, [join(scratch, "no-tokenizer.gguf")]);
    await settled(page);
    expect(await text(page, "#message")).toMatch(/no-tokenizer\.gguf: .*tokenizer/);

    const truncated = join(scratch, "cut.gguf");
    writeFileSync(truncated, readFileSync(join(scratch, "stories260K.gguf")).subarray(0, 5000));
    await upload(page, [truncated]);
    await settled(page);
    expect(await text(page, "#message")).toMatch(/cut\.gguf: .*(truncated|past the end)/);
    // Still working on the model it had.
    expect(PROMPT + (await greedy(page, "cpu (auto: software adapter), vite preview")).text).toBe(expected);

    // Dropped on the page rather than picked: the same bytes, through the drop zone's handler.
    const ggufBase64 = readFileSync(join(scratch, "stories260K.gguf")).toString("base64");
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], "stories260K.gguf"));
      document.querySelector("#drop")!.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }, ggufBase64);
    await page.waitForFunction(() => window.kilnDemo!.lastLoadProgress().some((p) => p.phase === "read" && p.file === "stories260K.gguf"));
    await settled(page);
    const reads = await page.evaluate(() => window.kilnDemo!.lastLoadProgress().filter((p) => p.phase === "read"));
    expect(reads.at(-1)).toMatchObject({ file: "stories260K.gguf", done: reads.at(-1)!.total });
    expect(await text(page, "#model")).toMatch(/^stories260K: llama, 5 layers/);
    expect(await page.$eval("#message", (e) => e.className)).not.toBe("error");
    expect(PROMPT + (await greedy(page, "cpu, from a dropped GGUF")).text).toBe(expected);

    // A Hugging Face set picked together: config.json, model.safetensors, tokenizer.json.
    const hf = ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(scratch, "hf", f));
    await upload(page, hf.slice(0, 2));
    await settled(page);
    expect(await text(page, "#message")).toMatch(/config\.json: tokenizer: no tokenizer\.json was given/);
    await upload(page, hf);
    await settled(page);
    expect(await text(page, "#model")).toMatch(/^(stories260K|model): llama, 5 layers/);
    expect(PROMPT + (await greedy(page, "cpu, from a picked HF safetensors set")).text).toBe(expected);
    expect(errors.filter((e) => !/Could not load/.test(e))).toEqual([]);
  }, 120_000);

  it("Stop aborts the request in the page's engine at once and frees its KV blocks", async () => {
    const { page, errors } = await open(preview!.url);
    await setValue(page, "#temperature", "0");
    await setValue(page, "#max-tokens", "500");
    await setValue(page, "#prompt", PROMPT);
    // Stop right after starting, from inside the page: 500 tokens take the engine well under a second now
    // (the worker pool; ~0.2 s on 2 cores), less than a puppeteer round trip to click could take, so the
    // click comes from the page's own loop as soon as the button is enabled (before the first token or mid-way).
    const out = await page.evaluate(async () => {
      const pending = window.kilnDemo!.generate();
      const stop = document.querySelector<HTMLButtonElement>("#stop")!;
      while (stop.disabled) await new Promise((r) => setTimeout(r, 0));
      stop.click();
      return pending;
    });
    expect(out.finishReason).toBe("abort");
    expect(out.tokens).toBeLessThan(500);
    expect(await page.evaluate(() => window.kilnDemo!.stats())).toMatchObject({ running: 0, waiting: 0, kvCacheUsage: 0 });
    expect(PROMPT + (await greedy(page, "cpu in the page, after a stop")).text).toBe(expected);
    expect(errors).toEqual([]);
  }, 120_000);

  it("works when served by kiln serve, and sends the prompt to that server through the switch", async () => {
    const { page, errors } = await open(`${server!.url}/`);
    expect(await page.$eval("#server-url", (e) => (e as HTMLInputElement).value)).toBe(`${server!.url}/v1`);
    expect(PROMPT + (await greedy(page, "cpu in the page, from kiln serve")).text).toBe(expected);
    await page.click('input[name="target"][value="server"]');
    const out = await greedy(page, "kiln serve over HTTP");
    expect(PROMPT + out.text).toBe(expected);
    expect(await page.$eval("#stats", (e) => e.textContent)).toContain(`${server!.url}/v1`);
    // Chat mode, through the server and in the page: the model's template (ChatML by default) applies.
    await page.click('input[name="mode"][value="chat"]');
    await setValue(page, "#max-tokens", "8");
    for (const target of ["server", "browser"]) {
      await page.click(`input[name="target"][value="${target}"]`);
      const chat = await page.evaluate(() => window.kilnDemo!.generate());
      expect(chat.tokens, target).toBeGreaterThan(0);
      expect(["length", "stop"]).toContain(chat.finishReason);
    }
    expect(errors).toEqual([]);
  }, 120_000);

  it("reaches a kiln serve on another origin from vite preview (CORS)", async () => {
    const { page, errors } = await open(preview!.url);
    await page.click('input[name="target"][value="server"]');
    await setValue(page, "#server-url", `${server!.url}/v1`);
    expect(PROMPT + (await greedy(page, "kiln serve over HTTP, from vite preview")).text).toBe(expected);

    // The server's refusals reach the page as messages: an empty prompt (400), then no server at all.
    await setValue(page, "#prompt", "");
    await page.evaluate(() => window.kilnDemo!.generateFromButton());
    expect(await text(page, "#message")).toMatch(/^Generation failed: .*prompt/);
    await setValue(page, "#prompt", PROMPT);
    await setValue(page, "#server-url", "http://127.0.0.1:9/v1");
    await page.evaluate(() => window.kilnDemo!.generateFromButton());
    expect(await text(page, "#message")).toMatch(/^Generation failed: cannot reach http:\/\/127\.0\.0\.1:9\/v1/);
    // Back to the engine in the page: still working.
    await page.click('input[name="target"][value="browser"]');
    expect(PROMPT + (await greedy(page, "cpu in the page, after server errors")).text).toBe(expected);
    // Chromium reports the failed fetches themselves on the console; nothing else may appear.
    expect(errors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_UNSAFE_PORT|status of 400/.test(e))).toEqual([]);
  }, 120_000);
});
