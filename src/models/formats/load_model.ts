// load_model.ts: one entry point that opens any supported model: a built-in name (stories260K), a
// Hugging Face folder (config.json), a GGUF file (magic "GGUF") or a llama2.c checkpoint (.bin). It
// owns format detection and the built-in names; each format's reader lives in its own file.

import { requireNodeBuiltin } from "../../core/host.js";
import type { LoadedModel } from "../types.js";
import { FileSource, FormatError } from "./file_source.js";
import { GGUF_MAGIC } from "./gguf.js";
import { loadGguf } from "./gguf_model.js";
import { readHfFolder } from "./hf_folder.js";
import { readLlama2c } from "./llama2c.js";

/** Models bundled with kiln, by name, relative to the package root. */
export const BUILTIN_MODELS: Readonly<Record<string, { model: string; tokenizer: string }>> = {
  stories260K: { model: "models/stories260K/stories260K.bin", tokenizer: "models/stories260K/tok512.bin" },
};

// NOTE: paths are Node's business; reading files through host.ts keeps this module loadable in a browser.
const nodeFs = () => requireNodeBuiltin("node:fs", "opening a model by path");
const packageRoot = () => decodeURIComponent(new URL("../../../", import.meta.url).pathname);

/** Absolute paths of a built-in model's files, or undefined when `name` is not built in. */
export function builtinModel(name: string): { model: string; tokenizer: string } | undefined {
  const b = BUILTIN_MODELS[name];
  return b && { model: packageRoot() + b.model, tokenizer: packageRoot() + b.tokenizer };
}

export type ModelFormat = "gguf" | "hf" | "llama2c";

/** Which reader a path needs (throws a FormatError naming the path when none fits). */
export function detectFormat(path: string): ModelFormat {
  const { existsSync, statSync } = nodeFs();
  if (!existsSync(path)) throw new FormatError(path, "path", `does not exist (built-in models: ${Object.keys(BUILTIN_MODELS).join(", ")})`);
  if (statSync(path).isDirectory()) {
    if (existsSync(`${path}/config.json`)) return "hf";
    throw new FormatError(path, "config.json", "the folder has no config.json (a Hugging Face model folder needs one)");
  }
  const src = new FileSource(path);
  try {
    if (src.size >= 4 && new DataView(src.read(0, 4, "magic").buffer).getUint32(0, true) === GGUF_MAGIC) return "gguf";
  } finally {
    src.close();
  }
  if (path.endsWith(".bin")) return "llama2c";
  throw new FormatError(path, "magic", 'not a GGUF file (no "GGUF" magic), not a .bin llama2.c checkpoint and not a folder with config.json');
}

/** Opens a model by built-in name or path; tensors are read from disk only when asked. */
export function loadModel(pathOrName: string): LoadedModel {
  const { existsSync } = nodeFs();
  const builtin = builtinModel(pathOrName);
  if (builtin && !existsSync(pathOrName)) {
    if (!existsSync(builtin.model)) throw new FormatError(builtin.model, "built-in model", `'${pathOrName}' is missing from this installation`);
    return readLlama2c(builtin.model);
  }
  const format = detectFormat(pathOrName);
  switch (format) {
    case "gguf":
      return loadGguf(pathOrName);
    case "hf":
      return readHfFolder(pathOrName);
    case "llama2c":
      return readLlama2c(pathOrName);
    default:
      return assertNever(format);
  }
}

function assertNever(x: never): never {
  throw new Error(`loadModel: unhandled format ${String(x)}`);
}
