// png_render.ts: an SVG picture turned into a PNG file by a headless Chromium found on this machine
// (KILN_CHROMIUM, else the usual install paths), for `kiln runs plot --out curves.png`. No browser
// library is needed at run time: Chromium's own --screenshot flag draws the page.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];

/** The Chromium to draw with, or undefined. */
export function findChromium(): string | undefined {
  const env = process.env.KILN_CHROMIUM;
  if (env) return existsSync(env) ? env : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

/** Write `svg` (width × height pixels) as a PNG at `out`. */
export async function svgToPng(svg: string, out: string, width: number, height: number): Promise<void> {
  const chromium = findChromium();
  if (!chromium) {
    throw new Error(`a PNG needs a headless Chromium (set KILN_CHROMIUM, or install one at ${CANDIDATES.join(", ")}); write an .svg instead`);
  }
  const dir = mkdtempSync(join(tmpdir(), "kiln-plot-"));
  const target = resolve(out);
  try {
    writeFileSync(join(dir, "plot.svg"), svg);
    // NOTE: an older PNG at `out` must not pass the written-check below if Chromium exits without writing.
    rmSync(target, { force: true });
    // NOTE: a throwaway profile folder so that a Chromium the user has open is never touched.
    const args = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", `--user-data-dir=${join(dir, "profile")}`,
      `--window-size=${width},${height}`, `--screenshot=${target}`, pathToFileURL(join(dir, "plot.svg")).href];
    await new Promise<void>((done, fail) => {
      execFile(chromium, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
        if (err) fail(new Error(`${chromium} could not draw the PNG: ${err.message.split("\n")[0]}${stderr ? `\n${stderr.trim().split("\n").slice(-3).join("\n")}` : ""}`));
        else done();
      });
    });
    if (!existsSync(target) || statSync(target).size === 0) throw new Error(`${chromium} exited without writing ${target}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
