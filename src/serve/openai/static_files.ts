// static_files.ts: serves a built web app (apps/web/dist: the in-browser demo and the kernel benchmark
// page) from a folder, so `kiln serve` gives a person a page to open at `/`. GET and HEAD only, files
// under the folder only (no path escapes it), a content type by extension. It knows nothing of the API.

import { createReadStream, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".wasm": "application/wasm",
  ".wgsl": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Sent with every file: they make the page cross-origin isolated, which a browser requires before it gives
 * a page SharedArrayBuffer (the cpu backend's worker threads share their memory through it). The page's
 * own requests (its files, /v1) are same-origin; a model fetched from another origin must allow CORS.
 * NOTE: apps/web/vite.config.ts sends the same two for `vite` and `vite preview`.
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export interface StaticFile {
  readonly path: string;
  readonly size: number;
}

/** The regular file at `path` and its size, or undefined (whatever stat says: no entry, ENOTDIR, EACCES, ENAMETOOLONG). */
function fileAt(path: string): StaticFile | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st?.isFile() ? { path, size: st.size } : undefined;
  } catch {
    // NOTE: "/index.html/x" walks through a file (ENOTDIR): a path that names no file is a 404, not a reset connection.
    return undefined;
  }
}

/** The file for a URL path, or undefined when there is none (or the path tries to leave the folder). */
export function staticFile(dir: string, urlPath: string): StaticFile | undefined {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split("?")[0]!);
  } catch {
    return undefined;
  }
  if (rel.includes("\0")) return undefined;
  if (rel === "/" || rel === "") rel = "/index.html";
  const root = normalize(dir + sep);
  const file = normalize(join(root, rel));
  if (!file.startsWith(root)) return undefined;
  // NOTE: "/bench" serves bench.html, as `vite preview` does.
  return fileAt(file) ?? (extname(file) ? undefined : fileAt(`${file}.html`));
}

/** Sends a file found by staticFile (HEAD: headers only). */
export function sendStaticFile(req: IncomingMessage, res: ServerResponse, { path: file, size }: StaticFile): Promise<void> {
  res.writeHead(200, {
    ...ISOLATION_HEADERS,
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Content-Length": String(size),
    // NOTE: Vite names built assets by content hash: they can be cached for good; pages must be revalidated.
    "Cache-Control": file.includes(`${sep}assets${sep}`) ? "public, max-age=31536000, immutable" : "no-cache",
  });
  if (req.method === "HEAD") {
    res.end();
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    createReadStream(file).on("error", reject).pipe(res).on("finish", resolve).on("close", resolve);
  });
}

/** The page shown at / when the web app has not been built. */
export const NOT_BUILT_PAGE = (dir: string) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>kiln serve</title>
<h1>kiln serve</h1><p>The OpenAI API is at <code>/v1</code>. The browser app is not built here (looked in <code>${dir}</code>):
run <code>npm run build:web</code> and reload.</p>`;
