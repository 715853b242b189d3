// open_model.ts: a model given by a path or a built-in name, opened from the file system (Node): its
// weights (loadModel: a built-in name, a llama2.c .bin, a GGUF file, a Hugging Face folder), its
// tokenizer (the .bin next to a llama2.c checkpoint, GGUF metadata, tokenizer.json) and its chat
// template and stop tokens. It owns where those are found for each format; reading each file is
// formats/' and tokenizers/' job, and opening from bytes a browser holds is open_files.ts's.

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { readJsonObject } from "./formats/hf_folder.js";
import { builtinModel, detectFormat, loadModel } from "./formats/load_model.js";
import type { Tokenizer } from "./tokenizers/index.js";
import { loadLlama2cTokenizer, tokenizerFromGguf, tokenizerFromHfJson } from "./tokenizers/index.js";
import type { OpenedModel } from "./open_files.js";
import { ggufTemplate, hfTemplate, openedModel } from "./open_files.js";

/** A tokenizer file given explicitly: tokenizer.json (Hugging Face) or a llama2.c tokenizer .bin. */
function tokenizerFromFile(path: string, vocabSize: number): Tokenizer {
  if (!existsSync(path)) throw new Error(`tokenizer '${path}' does not exist`);
  return path.endsWith(".json") ? tokenizerFromHfJson(readJsonObject(path), undefined, path) : loadLlama2cTokenizer(path, vocabSize);
}

/** llama2.c keeps the tokenizer beside the checkpoint: tok<vocab>.bin (custom vocabularies) or tokenizer.bin. */
function llama2cTokenizerBeside(modelPath: string, vocabSize: number): Tokenizer {
  const dir = dirname(modelPath);
  const names = [`tok${vocabSize}.bin`, "tokenizer.bin"];
  const found = names.map((n) => join(dir, n)).find((p) => existsSync(p));
  if (!found) {
    throw new Error(`${modelPath}: no tokenizer next to it (looked for ${names.join(", ")} in ${dir}); give one with --tokenizer FILE`);
  }
  return loadLlama2cTokenizer(found, vocabSize);
}

/** Open a model and its tokenizer; `tokenizerPath` overrides where the tokenizer comes from. */
export function openModel(pathOrName: string, tokenizerPath?: string): OpenedModel {
  const loaded = loadModel(pathOrName);
  const vocab = loaded.config.vocabSize;
  const builtin = existsSync(pathOrName) ? undefined : builtinModel(pathOrName);
  const format = builtin ? "llama2c" : detectFormat(pathOrName);
  let tokenizer: Tokenizer;
  let template: { text: string; origin: string } | undefined;
  if (tokenizerPath !== undefined) tokenizer = tokenizerFromFile(tokenizerPath, vocab);
  else if (builtin) tokenizer = loadLlama2cTokenizer(builtin.tokenizer, vocab);
  else if (format === "llama2c") tokenizer = llama2cTokenizerBeside(pathOrName, vocab);
  else if (format === "gguf") tokenizer = tokenizerFromGguf(loaded.metadata, pathOrName);
  else {
    const json = join(pathOrName, "tokenizer.json");
    if (!existsSync(json)) throw new Error(`${pathOrName}: the folder has no tokenizer.json; give one with --tokenizer FILE`);
    const configPath = join(pathOrName, "tokenizer_config.json");
    const config = existsSync(configPath) ? readJsonObject(configPath) : undefined;
    tokenizer = tokenizerFromHfJson(readJsonObject(json), config, json);
    const jinja = join(pathOrName, "chat_template.jinja");
    template = hfTemplate(existsSync(jinja) && statSync(jinja).isFile() ? { text: readFileSync(jinja, "utf8"), origin: jinja } : undefined, config, configPath);
  }
  if (format === "gguf") template = ggufTemplate(loaded, basename(pathOrName));
  return openedModel(pathOrName, loaded, tokenizer, template);
}
