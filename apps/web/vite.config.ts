// The browser app's build: two pages (the demo and the kernel benchmark), module Workers, and the
// repository root readable so the pages can bundle kiln's sources, shaders/ and the bundled model.
import { fileURLToPath } from "node:url";
import type { Plugin } from "vite";
import { defineConfig } from "vite";

/**
 * Cross-origin isolation, so the page gets SharedArrayBuffer (the cpu backend's threads share memory
 * through it); kiln serve sends the same (src/serve/openai/static_files.ts ISOLATION_HEADERS).
 */
const isolation = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = fileURLToPath(new URL("../..", import.meta.url));

/** Fails the build when a module the pages load imports a Node built-in (docs/core.md, "Node and the browser"). */
const noNodeBuiltins: Plugin = {
  name: "kiln:no-node-builtins",
  enforce: "pre",
  resolveId(id, importer) {
    if (id.startsWith("node:")) this.error(`${importer ?? "?"} imports ${id}: modules a browser loads must reach Node through src/core/host.ts`);
    return null;
  },
};

export default defineConfig({
  root: here,
  plugins: [noNodeBuiltins],
  // NOTE: relative asset URLs, so the same build works from `vite preview`, from `kiln serve` at /, and under any prefix.
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // NOTE: the bundled model and tokenizer stay files next to the page, fetched with progress, never inlined.
    assetsInlineLimit: 0,
    rollupOptions: { input: { index: `${here}index.html`, bench: `${here}bench.html` } },
  },
  // NOTE: Workers are bundled by a pipeline of their own: the check goes there too.
  worker: { format: "es", plugins: () => [noNodeBuiltins] },
  server: { fs: { allow: [repo] }, headers: isolation },
  preview: { host: "127.0.0.1", headers: isolation },
});
