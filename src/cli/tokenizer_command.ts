// tokenizer_command.ts: `kiln tokenizer train`: trains a byte-level BPE vocabulary (GPT-2 style) on a
// corpus and writes it as a Hugging Face tokenizer.json. It owns the flags and the report; reading the
// corpus is src/train/data/corpus.ts, training src/models/tokenizers/bpe_train.ts.

import { writeFileSync } from "node:fs";
import { createTokenizer, tokenizerToHfJson, trainBpe } from "../models/index.js";
import { readCorpus } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs, subcommandArgs } from "./command.js";

const HELP = `Usage: kiln tokenizer train --input FILE... --vocab-size N --out tokenizer.json [options]

Train a byte-level BPE vocabulary (GPT-2's pre-tokenizer regex and byte alphabet) on a corpus and
write it as a Hugging Face tokenizer.json (kiln, and the tokenizers library, read it back).

Options:
  --input FILE        a corpus file: UTF-8 text (one document) or .jsonl (repeat for several files)
  --vocab-size N      vocabulary size: special tokens + 256 bytes + merges
  --out FILE          where to write tokenizer.json
  --special TOKENS    comma-separated special tokens, given the first ids (default <|endoftext|>)
  --min-frequency N   never merge a pair seen fewer than N times (default 2); training stops early
                      when no pair is frequent enough
  --jsonl-field NAME  the text field of .jsonl records (default text)
  -h, --help          show this help

Example:
  kiln tokenizer train --input data/tinystories-sample/tiny_stories.txt --vocab-size 4096 --out tok.json

Exit status: 0 on success, 1 when the corpus cannot be used (the message names the file and the
byte offset or line), 2 on a usage error.`;

export const tokenizerCommand: Command = {
  name: "tokenizer",
  summary: "train a byte-level BPE tokenizer on a corpus (kiln tokenizer train)",
  help: HELP,
  async run(argv) {
    const rest = subcommandArgs(this, argv, "train");
    if (rest === undefined) return 0;
    const { values } = parseCommandArgs(this, rest, {
      input: { type: "string", multiple: true },
      "vocab-size": { type: "string" },
      out: { type: "string" },
      special: { type: "string" },
      "min-frequency": { type: "string" },
      "jsonl-field": { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (!values.input?.length) throw new UsageError("tokenizer train: --input is required", this);
    if (values.out === undefined) throw new UsageError("tokenizer train: --out is required", this);
    const vocabSize = positiveInt(this, "vocab-size", values["vocab-size"]);
    const minFrequency = values["min-frequency"] === undefined ? 2 : positiveInt(this, "min-frequency", values["min-frequency"]);
    const specialTokens = values.special === undefined ? undefined : values.special.split(",").filter((s) => s !== "");
    try {
      const t0 = performance.now();
      const docs = readCorpus(values.input, values["jsonl-field"] === undefined ? {} : { jsonlField: values["jsonl-field"] });
      const { spec } = trainBpe(docs, { vocabSize, minFrequency, ...(specialTokens ? { specialTokens } : {}) });
      const json = tokenizerToHfJson(createTokenizer(spec, values.out));
      writeFileSync(values.out, JSON.stringify(json, null, 2) + "\n");
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(`wrote ${values.out}: ${spec.tokens.length} tokens (${spec.merges!.length} merges) in ${secs} s`);
      if (spec.tokens.length < vocabSize) {
        const why = minFrequency > 1 ? `no pair occurs ${minFrequency}+ times (lower --min-frequency to go on)` : "every distinct word of the corpus is one token already";
        console.log(`note: stopped at ${spec.tokens.length} of ${vocabSize} tokens: ${why}`);
      }
      return 0;
    } catch (err) {
      console.error(`kiln tokenizer train: ${(err as Error).message}`);
      if (process.env.KILN_DEBUG) console.error((err as Error).stack);
      return 1;
    }
  },
};

function positiveInt(cmd: Command, flag: string, raw: string | undefined): number {
  if (raw === undefined) throw new UsageError(`tokenizer train: --${flag} is required`, cmd);
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`tokenizer train: --${flag} must be a positive integer, got '${raw}'`, cmd);
  return n;
}
