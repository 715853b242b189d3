// The browser app's build: two pages (the demo and the kernel benchmark), module Workers, and the
// repository root readable so the pages can bundle kiln's sources, shaders/ and the bundled model.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = fileURLToPath(new URL("../..", import.meta.url));

export default defineConfig({
  root: here,
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
  worker: { format: "es" },
  server: { fs: { allow: [repo] } },
  preview: { host: "127.0.0.1" },
});
