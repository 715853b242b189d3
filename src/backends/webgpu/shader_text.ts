// shader_text.ts: the WGSL template text of the routines in shaders/. In Node it is read from the
// package's shaders/ folder; a browser has no files, so a web app bundles the texts (e.g. Vite's
// `?raw` imports) and hands them over with setShaderTexts before the first routine is built.

import { nodeBuiltin } from "../../core/host.js";
import type { RoutineName } from "../../core/ops.js";
import { ROUTINES } from "../../core/ops.js";

/** One shader per routine of the op table (shaders/<routine>.wgsl): a new routine needs its text. */
export const SHADER_NAMES: readonly RoutineName[] = ROUTINES;
export type ShaderName = RoutineName;

const shaderText = new Map<ShaderName, string>();

/** Give the shader texts (a browser build's bundled copies); replaces any read before. */
export function setShaderTexts(texts: Readonly<Record<ShaderName, string>>): void {
  for (const name of SHADER_NAMES) {
    const text = texts[name];
    if (typeof text !== "string" || text.length === 0) throw new Error(`setShaderTexts: shaders/${name}.wgsl is missing or empty`);
    shaderText.set(name, text);
  }
}

/** The template text of shaders/<name>.wgsl. */
export function shaderTemplate(name: ShaderName): string {
  let text = shaderText.get(name);
  if (text === undefined) {
    const fs = nodeBuiltin("node:fs");
    if (!fs) throw new Error(`webgpu: no text for shaders/${name}.wgsl: in a browser, call setShaderTexts() with the bundled shaders first`);
    // NOTE: the module URL through a variable, so bundlers do not copy shaders/ as assets (a browser build bundles the texts).
    const here = import.meta.url;
    text = fs.readFileSync(new URL(`../../../shaders/${name}.wgsl`, here), "utf8");
    shaderText.set(name, text);
  }
  return text;
}
