// convert_command.ts: `kiln convert`: read a model in any supported format (llama2.c, GGUF, Hugging
// Face folder, or a built-in name) and write it as GGUF or as a Hugging Face safetensors folder, its
// tokenizer and chat template included. It owns the flags and what goes into the output; finding the
// tokenizer is models/open_model.ts, reading and writing the formats src/models/formats, turning tokenizers
// into GGUF metadata or tokenizer.json src/models/tokenizers. Tensors stream one at a time, so models
// larger than RAM convert.

import type { LoadedModel, MetaValue, Tokenizer } from "../models/index.js";
import { loadModel, openModel, tokenizerToGgufMetadata, tokenizerToHfConfig, tokenizerToHfJson, writeGguf, writeHfFolder } from "../models/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

export const GGUF_TYPES = ["f32", "f16", "q8_0", "q4_0", "q4_k"] as const;
const HF_TYPES = { f32: "F32", f16: "F16", bf16: "BF16" } as const;

const HELP = `Usage: kiln convert --model M --to gguf|hf --out PATH [--type T] [--tokenizer FILE | --no-tokenizer]

Convert a model between weight formats. Tensors are read, converted and written one at a time, so a
model larger than memory converts. The tokenizer and the model's chat template go along (as GGUF
tokenizer.* metadata, or as tokenizer.json + tokenizer_config.json).

Options:
  --model M         a llama2.c .bin, a .gguf file, a Hugging Face folder (config.json + safetensors),
                    or a built-in name (stories260K)
  --to F            gguf: one GGUF v3 file; hf: a folder with config.json and model.safetensors
  --out PATH        the file (gguf) or folder (hf) to write
  --type T          how weights are stored: for gguf f32 (default), f16, q8_0, q4_0 or q4_k (2-D tensors only;
                    norms stay f32); for hf f32 (default), f16 or bf16
  --tokenizer FILE  the tokenizer to include (a llama2.c tokenizer .bin or a tokenizer.json); default:
                    the model's own (bundled, in the GGUF, the folder's tokenizer.json, or
                    tok<vocab>.bin / tokenizer.bin next to a llama2.c checkpoint)
  --no-tokenizer    convert the weights only
  -h, --help        show this help

Examples:
  kiln convert --model stories260K --to gguf --out stories260K.gguf
  kiln convert --model stories260K --to hf --out stories260K-hf --type f16

Exit status: 0 on success, 1 when the model cannot be read or written (the message names the file
and the field), 2 on a usage error.`;

export const convertCommand: Command = {
  name: "convert",
  summary: "convert a model between llama2.c, GGUF and Hugging Face safetensors (with its tokenizer)",
  help: HELP,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      model: { type: "string" },
      to: { type: "string" },
      out: { type: "string" },
      type: { type: "string" },
      tokenizer: { type: "string" },
      "no-tokenizer": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    for (const flag of ["model", "to", "out"] as const) if (values[flag] === undefined) throw new UsageError(`convert: --${flag} is required`, this);
    const to = values.to!;
    if (to !== "gguf" && to !== "hf") throw new UsageError(`convert: --to must be gguf or hf, got '${to}'`, this);
    const type = values.type ?? "f32";
    const types: readonly string[] = to === "gguf" ? GGUF_TYPES : Object.keys(HF_TYPES);
    if (!types.includes(type)) throw new UsageError(`convert: --type for ${to} must be one of ${types.join(", ")}, got '${type}'`, this);

    if (values["no-tokenizer"] && values.tokenizer !== undefined) throw new UsageError("convert: --tokenizer and --no-tokenizer exclude each other", this);
    try {
      convert(values.model!, to, type, values.out!, values["no-tokenizer"] ? null : values.tokenizer);
      return 0;
    } catch (err) {
      // NOTE: a bad input file is the user's to fix: the message names the file and the field; the stack only helps with KILN_DEBUG.
      console.error(`kiln convert: ${(err as Error).message}`);
      if (process.env.KILN_DEBUG) console.error((err as Error).stack);
      return 1;
    }
  },
};

interface Carried {
  readonly model: LoadedModel;
  readonly tokenizer?: Tokenizer;
  readonly chatTemplate?: string;
}

/** The model, and (unless `tokenizerArg` is null) its tokenizer and chat template as src/models/open_model.ts finds them. */
function open(modelArg: string, tokenizerArg: string | undefined | null): Carried {
  if (tokenizerArg === null) return { model: loadModel(modelArg) };
  const m = openModel(modelArg, tokenizerArg);
  return { model: m.loaded, tokenizer: m.tokenizer, ...(m.chatTemplate === undefined ? {} : { chatTemplate: m.chatTemplate }) };
}

export function convert(modelArg: string, to: "gguf" | "hf", type: string, out: string, tokenizerArg: string | undefined | null): void {
  const started = performance.now();
  const { model, tokenizer: tok, chatTemplate } = open(modelArg, tokenizerArg);
  if (to === "gguf") {
    const meta: Map<string, MetaValue> | undefined = tok && tokenizerToGgufMetadata(tok);
    if (meta && chatTemplate !== undefined) meta.set("tokenizer.chat_template", chatTemplate);
    writeGguf(out, model, { types: type as (typeof GGUF_TYPES)[number], ...(meta ? { tokenizerMetadata: meta } : {}) });
  } else {
    writeHfFolder(out, model, {
      dtype: HF_TYPES[type as keyof typeof HF_TYPES],
      ...(tok ? { tokenizerJson: tokenizerToHfJson(tok), tokenizerConfig: { ...tokenizerToHfConfig(tok), ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }) } } : {}),
    });
  }
  const secs = ((performance.now() - started) / 1000).toFixed(2);
  const tokNote = tok ? `tokenizer (${tok.vocabSize} tokens)${chatTemplate === undefined ? "" : " and chat template"} included` : "weights only (--no-tokenizer)";
  console.log(`${model.source} (${model.config.arch}, ${model.tensors.size} tensors) -> ${out} (${to}, ${type}) in ${secs} s; ${tokNote}`);
}
