// data_command.ts: `kiln data prepare`: tokenizes text or JSONL corpora into binary token shards with
// an index.json, on worker threads, deterministically. It owns the flags and the report; the work is
// src/train/data/prepare.ts.

import { availableParallelism } from "node:os";
import { prepareShards } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs, subcommandArgs } from "./command.js";

const HELP = `Usage: kiln data prepare --input FILE... --tokenizer T --out DIR [options]

Tokenize corpora into token shards (uint16 little-endian when the vocabulary has at most 65536
tokens, else uint32) plus DIR/index.json (dtype, vocabulary size, tokenizer sha256, and per shard its
file, token count, byte length and sha256). Each document is followed by the tokenizer's end-of-text
token when it has one; the last --val-fraction of the token stream is the val split. The same inputs
and tokenizer give the same bytes, whatever --workers is.

Options:
  --input FILE         a corpus: UTF-8 text (one document, or several with --doc-separator) or .jsonl
                       (one JSON object per line); repeat for several files
  --tokenizer T        a tokenizer.json (e.g. from kiln tokenizer train), a llama2.c tokenizer .bin,
                       or "char" (the corpus's characters, as nanoGPT's shakespeare_char)
  --out DIR            the folder to write shards and index.json into
  --shard-tokens N     tokens per shard file (default 16777216)
  --val-fraction F     share of the tokens for the val split, in [0, 1) (default 0.1)
  --workers K          tokenizer worker threads (default: the CPU count, at most 8)
  --jsonl-field NAME   the text field of .jsonl records (default text)
  --doc-separator S    cut text files into documents at S (e.g. "\\n\\n"; escapes \\n and \\t are read)
  -h, --help           show this help

Example:
  kiln data prepare --input data/tinyshakespeare/input.txt --tokenizer char --out data/shakespeare_char

Exit status: 0 on success, 1 when an input cannot be used (the message names the file and the byte
offset or line), 2 on a usage error.`;

export const dataCommand: Command = {
  name: "data",
  summary: "tokenize corpora into token shards for training (kiln data prepare)",
  help: HELP,
  async run(argv) {
    const rest = subcommandArgs(this, argv, "prepare");
    if (rest === undefined) return 0;
    const { values } = parseCommandArgs(this, rest, {
      input: { type: "string", multiple: true },
      tokenizer: { type: "string" },
      out: { type: "string" },
      "shard-tokens": { type: "string" },
      "val-fraction": { type: "string" },
      workers: { type: "string" },
      "jsonl-field": { type: "string" },
      "doc-separator": { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (!values.input?.length) throw new UsageError("data prepare: --input is required", this);
    for (const flag of ["tokenizer", "out"] as const) if (values[flag] === undefined) throw new UsageError(`data prepare: --${flag} is required`, this);
    const int = (flag: string, raw: string | undefined, dflt: number): number => {
      if (raw === undefined) return dflt;
      const n = Number(raw);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`data prepare: --${flag} must be a positive integer, got '${raw}'`, this);
      return n;
    };
    const valFraction = values["val-fraction"] === undefined ? 0.1 : Number(values["val-fraction"]);
    if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`data prepare: --val-fraction must be a number in [0, 1), got '${values["val-fraction"]}'`, this);
    const sep = values["doc-separator"]?.replaceAll("\\n", "\n").replaceAll("\\t", "\t");
    try {
      const t0 = performance.now();
      const index = await prepareShards({
        inputs: values.input,
        tokenizer: values.tokenizer!,
        outDir: values.out!,
        shardTokens: int("shard-tokens", values["shard-tokens"], 1 << 24),
        valFraction,
        workers: int("workers", values.workers, Math.min(8, availableParallelism())),
        ...(values["jsonl-field"] !== undefined ? { jsonlField: values["jsonl-field"] } : {}),
        ...(sep !== undefined ? { docSeparator: sep } : {}),
      });
      const s = index.splits;
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `wrote ${values.out}: ${s.train.tokens} train tokens in ${s.train.shards.length} shard(s), ${s.val.tokens} val tokens in ${s.val.shards.length}, ` +
          `${index.dtype}, vocabulary ${index.vocabSize}, in ${secs} s`,
      );
      return 0;
    } catch (err) {
      console.error(`kiln data prepare: ${(err as Error).message}`);
      if (process.env.KILN_DEBUG) console.error((err as Error).stack);
      return 1;
    }
  },
};
