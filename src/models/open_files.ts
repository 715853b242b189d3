// open_files.ts: a model given as files' bytes (what a browser has: files a person picked or dropped,
// or a model fetched over HTTP), read with the same format readers as files on disk: one GGUF file
// (tokenizer inside), a llama2.c checkpoint with its tokenizer .bin, or a Hugging Face set
// (config.json, *.safetensors, tokenizer.json, optional tokenizer_config.json). It also owns what every
// opened model carries besides weights (tokenizer, chat template, stop tokens), which the CLI's
// path-based opener shares. It does not touch the file system.

import { chatTemplateFromMetadata, chatTemplateFromTokenizerConfig } from "./chat_template.js";
import { FormatError, MemorySource } from "./formats/file_source.js";
import { GGUF_MAGIC } from "./formats/gguf.js";
import { loadGguf } from "./formats/gguf_model.js";
import { hfModel, parseJsonObject } from "./formats/hf_folder.js";
import { readLlama2c } from "./formats/llama2c.js";
import type { Tokenizer } from "./tokenizers/index.js";
import { parseLlama2cTokenizer, tokenizerFromGguf, tokenizerFromHfJson, createTokenizer } from "./tokenizers/index.js";
import type { LoadedModel } from "./types.js";

export interface OpenedModel {
  readonly loaded: LoadedModel;
  readonly tokenizer: Tokenizer;
  /** The model's own chat template (undefined: it has none), and where it came from. */
  readonly chatTemplate?: string;
  readonly chatTemplateOrigin: string;
  /** Ids that end generation: EOS, and end-of-turn when the model names one. */
  readonly stopTokenIds: readonly number[];
}

export const DEFAULT_TEMPLATE_ORIGIN = "default chat template (ChatML)";

function metaNumber(loaded: LoadedModel, key: string): number | undefined {
  const v = loaded.metadata.get(key);
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
}

/** The opened model: checks the tokenizer fits the model and collects its stop tokens. `name` names it in errors. */
export function openedModel(name: string, loaded: LoadedModel, tokenizer: Tokenizer, template?: { text: string; origin: string }): OpenedModel {
  const vocab = loaded.config.vocabSize;
  if (tokenizer.vocabSize > vocab) {
    throw new Error(`${name}: the tokenizer has ${tokenizer.vocabSize} tokens, more than the model's vocabulary of ${vocab}`);
  }
  const stopTokenIds = [tokenizer.eosId, metaNumber(loaded, "tokenizer.ggml.eot_token_id")].filter((id): id is number => id !== undefined);
  return {
    loaded, tokenizer, stopTokenIds: [...new Set(stopTokenIds)],
    chatTemplateOrigin: template?.origin ?? DEFAULT_TEMPLATE_ORIGIN,
    ...(template === undefined ? {} : { chatTemplate: template.text }),
  };
}

/** A GGUF model's chat template from its metadata, if it has one. */
export function ggufTemplate(loaded: LoadedModel, fileName: string): { text: string; origin: string } | undefined {
  const text = chatTemplateFromMetadata(loaded.metadata);
  return text === undefined ? undefined : { text, origin: `${fileName} tokenizer.chat_template` };
}

/**
 * A Hugging Face model's chat template: chat_template.jinja when there is one (newer transformers),
 * else tokenizer_config.json's chat_template (older ones).
 */
export function hfTemplate(
  jinja: { text: string; origin: string } | undefined, tokConfig: Readonly<Record<string, unknown>> | undefined, tokConfigName: string,
): { text: string; origin: string } | undefined {
  if (jinja) return jinja;
  const text = tokConfig && chatTemplateFromTokenizerConfig(tokConfig, tokConfigName);
  return text === undefined ? undefined : { text, origin: `${tokConfigName} chat_template` };
}

/** One file a person gave: its name (for errors and format hints) and its bytes. */
export interface ModelFile {
  readonly name: string;
  readonly bytes: Uint8Array;
}

const isGguf = (f: ModelFile) => f.bytes.byteLength >= 4 && new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC;
const baseName = (name: string) => name.slice(name.lastIndexOf("/") + 1);
const text = (f: ModelFile) => new TextDecoder().decode(f.bytes);
/** llama2.c names its tokenizers tok<vocab>.bin or tokenizer.bin. */
const isLlama2cTokenizer = (f: ModelFile) => /^tok(\d+|enizer)\.bin$/.test(baseName(f.name));

const KNOWN = "a .gguf file; a llama2.c .bin with its tokenizer (tok<N>.bin or tokenizer.bin); or config.json + *.safetensors + tokenizer.json";

/** Opens a model from files' bytes. Throws an error naming the file and what is wrong or missing. */
export function openModelFiles(files: readonly ModelFile[]): OpenedModel {
  if (files.length === 0) throw new Error(`no model files given (kiln reads ${KNOWN})`);
  const byName = new Map(files.map((f) => [baseName(f.name), f]));

  const gguf = files.find(isGguf);
  if (gguf) {
    const loaded = loadGguf(new MemorySource(gguf.name, gguf.bytes));
    return openedModel(gguf.name, loaded, tokenizerFromGguf(loaded.metadata, gguf.name), ggufTemplate(loaded, gguf.name));
  }

  const config = byName.get("config.json");
  if (config) {
    const shards = files.filter((f) => f.name.endsWith(".safetensors"));
    if (shards.length === 0) throw new FormatError(config.name, "weights", "no .safetensors file was given with config.json");
    const loaded = hfModel(parseJsonObject(text(config), config.name), config.name, shards.map((f) => new MemorySource(f.name, f.bytes)), baseName(shards[0]!.name));
    const tokJson = byName.get("tokenizer.json");
    if (!tokJson) throw new FormatError(config.name, "tokenizer", "no tokenizer.json was given with the model (add it to the files)");
    const tokConfigFile = byName.get("tokenizer_config.json");
    const tokConfig = tokConfigFile && parseJsonObject(text(tokConfigFile), tokConfigFile.name);
    const tokenizer = tokenizerFromHfJson(parseJsonObject(text(tokJson), tokJson.name), tokConfig, tokJson.name);
    const jinja = byName.get("chat_template.jinja");
    const template = hfTemplate(jinja && { text: text(jinja), origin: jinja.name }, tokConfig, tokConfigFile?.name ?? "tokenizer_config.json");
    return openedModel(config.name, loaded, tokenizer, template);
  }

  const checkpoint = files.find((f) => f.name.endsWith(".bin") && !isLlama2cTokenizer(f));
  if (checkpoint) {
    const loaded = readLlama2c(new MemorySource(checkpoint.name, checkpoint.bytes));
    const vocab = loaded.config.vocabSize;
    const tok = files.find(isLlama2cTokenizer);
    if (!tok) {
      throw new FormatError(checkpoint.name, "tokenizer", `a llama2.c checkpoint needs its tokenizer: add tok${vocab}.bin or tokenizer.bin to the files`);
    }
    return openedModel(checkpoint.name, loaded, createTokenizer(parseLlama2cTokenizer(tok.bytes, tok.name, vocab), tok.name));
  }
  const names = files.map((f) => f.name).join(", ");
  throw new Error(`${names}: not a model kiln reads (no GGUF magic, no config.json, no llama2.c .bin); give ${KNOWN}`);
}
