// run_data.ts: a run's batch sources from its config's data section: a text file tokenized by
// characters (RandomWindows over the in-memory tokens, the last valFraction held out), or prepared
// shards (`kiln data prepare`: a DataLoader on the train split for training, one on the val split for
// evaluation). Either way the trainer sees BatchSources; which one a run uses is decided here only.
// The same data gives the tokenizer as text <-> ids (a TextCodec) for the samples at evaluation.

import { requireNodeBuiltin } from "../core/host.js";
import { createTokenizer } from "../models/tokenizers/index.js";
import type { BatchSource } from "./batches.js";
import { RandomWindows } from "./batches.js";
import { charVocab } from "./char_vocab.js";
import type { TrainConfig } from "./config.js";
import { createLoader } from "./data/index.js";
import { loadTokenizerRef } from "./data/token_codec.js";
import { LoaderBatches } from "./loader_batches.js";
import type { TextCodec } from "./sample_text.js";

export interface RunData {
  readonly train: BatchSource;
  readonly val: BatchSource;
  readonly vocabSize: number;
  /** Where the batch source's position goes in a checkpoint: the sampler's seed (rng) or the loader's position. */
  readonly stateField: "rng" | "loader";
  /** The run's tokenizer as text <-> ids, for samples (undefined: none available, see eval.sample.tokenizer). */
  readonly codec: TextCodec | undefined;
  /** One line for the log: the tokenizer and the split sizes. */
  readonly describe: string;
  /** Before an evaluation: the held-out batches start from the same place every time. */
  rewindVal(): void;
  close(): Promise<void>;
}

const isUrl = (p: string) => /^https?:\/\//.test(p);
/** A path from the config, relative to the config file's folder unless absolute (or a URL). */
export const configPath = (p: string, baseDir: string) => (p.startsWith("/") || isUrl(p) ? p : `${baseDir}/${p}`);

export async function openRunData(cfg: TrainConfig, baseDir: string): Promise<RunData> {
  const { batchSize, seed } = cfg.train;
  const blockSize = cfg.model.blockSize;
  if (cfg.data.index !== undefined) {
    const source = configPath(cfg.data.index, baseDir);
    const train = new LoaderBatches(await createLoader({ source, split: "train", batchSize, blockSize, seed }));
    const val = new LoaderBatches(await createLoader({ source, split: "val", batchSize, blockSize, seed: seed + 1 }));
    const index = train.loader.shards.index;
    return {
      train, val, vocabSize: index.vocabSize, stateField: "loader", codec: shardCodec(index.tokenizer, cfg, baseDir),
      describe: `vocab ${index.vocabSize} (${index.tokenizer.kind} ${index.tokenizer.name}), ${index.splits.train.tokens} training and ${index.splits.val.tokens} held-out tokens from ${source}`,
      rewindVal: () => val.rewind(),
      close: async () => {
        await Promise.all([train.close(), val.close()]);
      },
    };
  }
  const fs = requireNodeBuiltin("node:fs", "reading the training text");
  const path = configPath(cfg.data.path!, baseDir);
  if (!fs.existsSync(path)) throw new Error(`data.path: ${path} does not exist`);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(path));
  const vocab = charVocab(text);
  const ids = vocab.encode(text);
  const split = Math.floor(ids.length * (1 - (cfg.data.valFraction ?? 0.1)));
  return {
    train: new RandomWindows(ids.subarray(0, split), batchSize, blockSize, seed),
    val: new RandomWindows(ids.subarray(split), batchSize, blockSize, seed + 1),
    vocabSize: vocab.chars.length, stateField: "rng", codec: { encode: (t) => Array.from(vocab.encode(t)), decode: (ids) => vocab.decode(ids) },
    describe: `vocab ${vocab.chars.length} (char), ${split} training and ${ids.length - split} held-out tokens`,
    rewindVal: () => {},
    close: async () => {},
  };
}

/** The tokenizer of prepared shards: the index's characters, or eval.sample.tokenizer checked against the index's sha256. */
function shardCodec(tok: { kind: string; name: string; sha256: string; chars?: string[] | undefined }, cfg: TrainConfig, baseDir: string): TextCodec | undefined {
  if (tok.kind === "char") {
    const chars = tok.chars ?? [];
    const ids = new Map(chars.map((c, i) => [c, i]));
    return {
      encode: (text) => Array.from(text, (c) => {
        const id = ids.get(c);
        if (id === undefined) throw new Error(`eval.sample.prompt: character ${JSON.stringify(c)} is not in the shards' vocabulary`);
        return id;
      }),
      decode: (out) => out.map((i) => chars[i] ?? "\uFFFD").join(""),
    };
  }
  const file = cfg.eval.sample?.tokenizer;
  if (file === undefined) return undefined;
  const ref = loadTokenizerRef(configPath(file, baseDir), []);
  if (ref.sha256 !== tok.sha256) throw new Error(`eval.sample.tokenizer: ${file} (sha256 ${ref.sha256.slice(0, 12)}…) is not the tokenizer the shards were prepared with (${tok.name}, sha256 ${tok.sha256.slice(0, 12)}…)`);
  if (ref.kind === "char") return undefined;
  const t = createTokenizer(ref.spec, file);
  return { encode: (text) => t.encode(text, { addBos: false, addEos: false }), decode: (out) => t.decode(out) };
}
