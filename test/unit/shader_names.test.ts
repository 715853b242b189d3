// The webgpu shader list is the op table's routine list: shaders/ holds exactly one WGSL file per
// routine, and a browser build that hands over texts without one of them is told which is missing.

import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ROUTINES } from "../../src/core/ops.js";
import { setShaderTexts } from "../../src/backends/webgpu/shader_text.js";
import { repoFile } from "../helpers/fixtures.js";

describe("webgpu shader names", () => {
  it("shaders/ holds one .wgsl per routine of the op table, and nothing else", () => {
    const files = readdirSync(repoFile("shaders")).filter((f) => f.endsWith(".wgsl")).sort();
    expect(files).toEqual(ROUTINES.map((r) => `${r}.wgsl`).sort());
  });

  it("setShaderTexts names a routine whose text is missing", () => {
    // NOTE: the first routine is the one left out, so the failed call installs no text before it throws.
    const [missing, ...rest] = ROUTINES;
    const texts = Object.fromEntries(rest.map((r) => [r, `// ${r}`]));
    expect(() => setShaderTexts(texts as Parameters<typeof setShaderTexts>[0])).toThrow(`shaders/${missing}.wgsl is missing`);
  });
});
