// helpers.ts: what the browser end-to-end tests share: build the web app (vite) into a folder of the
// test's own, serve it with `vite preview` on a free port (or from a plain server without the isolation
// headers), start headless Chromium with WebGPU (SwiftShader without a GPU), collect a page's console
// errors, and save screenshots under test/artifacts/.
// Each test file builds once (beforeAll); the pages and what they check live in the tests.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "puppeteer-core";
import puppeteer from "puppeteer-core";
import { CHROMIUM } from "../helpers/requirements.js";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const ARTIFACTS = join(REPO, "test", "artifacts");

const VITE = join(REPO, "node_modules", "vite", "bin", "vite.js");
const CONFIG = join(REPO, "apps", "web", "vite.config.ts");

/** Run vite directly (not through npx: killing a wrapper would leave vite running); rejects with its output. */
function vite(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [VITE, ...args, "--config", CONFIG], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * Build the app into a fresh temporary folder (so two test files never share, or race on, one dist)
 * and return the folder.
 */
export function buildApp(name: string): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), `kiln-web-${name}-`));
  return new Promise((resolve, reject) => {
    const child = vite(["build", "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn"]);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d));
    child.stderr!.on("data", (d: Buffer) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) return resolve(outDir);
      rmSync(outDir, { recursive: true, force: true });
      reject(new Error(`vite build failed (exit ${code}):\n${output}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Preview {
  /** Base URL ending in "/", e.g. http://127.0.0.1:41234/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Serve a built app with `vite preview`; resolves once it answers, rejects with its output if it exits. */
export async function startPreview(outDir: string, timeoutMs = 20_000): Promise<Preview> {
  const port = await freePort();
  const child = vite(["preview", "--outDir", outDir, "--port", String(port), "--strictPort", "--host", "127.0.0.1"]);
  let output = "";
  let exited: number | null | undefined;
  child.stdout!.on("data", (d: Buffer) => (output += d));
  child.stderr!.on("data", (d: Buffer) => (output += d));
  child.on("close", (code) => (exited = code));
  const url = `http://127.0.0.1:${port}/`;
  const close = () =>
    new Promise<void>((resolve) => {
      if (exited !== undefined) return resolve();
      child.once("close", () => resolve());
      child.kill("SIGTERM");
    });
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 100))) {
    if (exited !== undefined) throw new Error(`vite preview exited (${exited}) before serving:\n${output}`);
    if (Date.now() - t0 > timeoutMs) {
      await close();
      throw new Error(`vite preview did not answer on ${url} within ${timeoutMs} ms:\n${output}`);
    }
    try {
      if ((await fetch(url)).ok) return { url, close };
    } catch {
      // not listening yet
    }
  }
}

/**
 * Serve a built app WITHOUT the COOP/COEP headers that vite preview and kiln serve send, so its pages are
 * not cross-origin isolated (no SharedArrayBuffer): how a page behaves on a plain static server.
 */
export async function startPlainServer(outDir: string): Promise<Preview> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wgsl": "text/plain", ".json": "application/json" };
  const server = createHttpServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = join(outDir, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(outDir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * Headless Chromium with WebGPU on (SwiftShader where there is no GPU), or off (`webgpu: false`:
 * headless Linux Chromium then has no adapter, which is how the pages' fallback paths are tested).
 */
export function launchBrowser(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
      ...(opts.webgpu === false ? [] : ["--enable-unsafe-webgpu"]),
    ],
  });
}

/** Console errors and uncaught exceptions of a page (and its workers), as text; the list fills as they happen. */
export function collectConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()} (${m.location().url ?? ""})`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${(err as Error).message ?? String(err)}`));
  return errors;
}

/**
 * Save a screenshot of the page as test/artifacts/<name>.png; returns its path. With
 * KILN_UPDATE_DOCS_IMAGES=1 it also replaces docs/images/<name>.png (tests never change tracked
 * files otherwise: `KILN_UPDATE_DOCS_IMAGES=1 npx vitest run test/e2e` refreshes the docs' pictures).
 */
export async function saveScreenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage });
  if (process.env.KILN_UPDATE_DOCS_IMAGES === "1") {
    mkdirSync(join(REPO, "docs", "images"), { recursive: true });
    copyFileSync(path, join(REPO, "docs", "images", `${name}.png`));
  }
  return path;
}
