// prepare.ts: `kiln data prepare` as a library call: corpus files -> documents -> tokenizer tasks on
// worker threads -> one token stream (each document followed by the end-of-text id, where the
// tokenizer has one) -> the last valFraction of the stream as the val split, the rest as train, as
// fixed-size shards plus index.json. The output depends only on the inputs, the tokenizer and the
// shard size, never on the worker count or timing. index.json is written last, through a temporary
// name, so an interrupted run never leaves an index that points at missing or partial shards.
// It does not read shards back (shard_source.ts, loader.ts).

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { makeTasks } from "./chunk.js";
import { readCorpus } from "./corpus.js";
import { INDEX_FILE, INDEX_FORMAT, INDEX_VERSION, bytesPerToken, dtypeFor, type ShardEntry, type ShardIndex } from "./shard_index.js";
import { cutsAtNewlines, endOfTextId, loadTokenizerRef, sha256Hex, vocabSizeOf } from "./token_codec.js";
import { tokenizeOnWorkers } from "./tokenize_pool.js";

export interface PrepareOptions {
  readonly inputs: readonly string[];
  /** A tokenizer.json, a llama2.c tokenizer .bin, or "char". */
  readonly tokenizer: string;
  readonly outDir: string;
  /** Tokens per shard file (default 2^24). */
  readonly shardTokens?: number;
  /** The share of tokens at the end of the stream that forms the val split (default 0.1): train is the first floor(n * (1 - f)). */
  readonly valFraction?: number;
  /** Tokenizer worker threads (default 2). */
  readonly workers?: number;
  readonly jsonlField?: string;
  readonly docSeparator?: string;
}

export async function prepareShards(o: PrepareOptions): Promise<ShardIndex> {
  const shardTokens = o.shardTokens ?? 1 << 24;
  const valFraction = o.valFraction ?? 0.1;
  if (!Number.isInteger(shardTokens) || shardTokens < 1) throw new Error(`data prepare: shard size must be a positive number of tokens, got ${shardTokens}`);
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`data prepare: val fraction must be in [0, 1), got ${valFraction}`);
  const docs = readCorpus(o.inputs, { ...(o.jsonlField !== undefined ? { jsonlField: o.jsonlField } : {}), ...(o.docSeparator !== undefined ? { docSeparator: o.docSeparator } : {}) });
  const ref = loadTokenizerRef(o.tokenizer, docs);
  const tasks = makeTasks(docs, cutsAtNewlines(ref));
  const pieces = await tokenizeOnWorkers(ref, tasks.map((t) => t.text), o.workers ?? 2);

  const eot = endOfTextId(ref);
  const vocabSize = vocabSizeOf(ref);
  let total = 0;
  tasks.forEach((t, i) => (total += pieces[i]!.length + (t.last && eot !== undefined ? 1 : 0)));
  const stream = new Uint32Array(total);
  let at = 0;
  tasks.forEach((t, i) => {
    stream.set(pieces[i]!, at);
    at += pieces[i]!.length;
    if (t.last && eot !== undefined) stream[at++] = eot;
  });
  for (let i = 0; i < total; i++) if (stream[i]! >= vocabSize) throw new Error(`data prepare: token id ${stream[i]} at position ${i} is outside the vocabulary of ${vocabSize} (a tokenizer bug)`);

  // NOTE: nanoGPT's split, train = data[:int(n * 0.9)], so a char-level run sees the same tokens as its reference.
  const trainTokens = valFraction > 0 ? Math.min(total - 1, Math.floor(total * (1 - valFraction))) : total;
  const valTokens = total - trainTokens;
  if (trainTokens < 2) throw new Error(`data prepare: the corpus gives ${total} tokens, too few for a train split of at least 2 tokens${valTokens > 0 ? ` beside ${valTokens} val tokens` : ""}`);

  mkdirSync(o.outDir, { recursive: true });
  const dtype = dtypeFor(vocabSize);
  const write = (name: "train" | "val", from: number, to: number): ShardIndex["splits"]["train"] => {
    const shards: ShardEntry[] = [];
    for (let s = from, k = 0; s < to; s += shardTokens, k++) {
      const bytes = encodeTokens(stream.subarray(s, Math.min(to, s + shardTokens)), dtype);
      const file = `${name}_${String(k).padStart(5, "0")}.bin`;
      writeFileSync(join(o.outDir, file), bytes);
      shards.push({ file, tokens: bytes.length / bytesPerToken(dtype), bytes: bytes.length, sha256: sha256Hex(bytes) });
    }
    return { tokens: to - from, shards };
  };
  const index: ShardIndex = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    dtype,
    vocabSize,
    eotId: eot ?? null,
    tokenizer: { kind: ref.kind, name: ref.name, sha256: ref.sha256, ...(ref.kind === "char" ? { chars: [...ref.chars] } : {}) },
    inputs: o.inputs.map((p) => {
      const bytes = readFileSync(p);
      return { name: basename(p), bytes: bytes.length, sha256: sha256Hex(bytes) };
    }),
    splits: { train: write("train", 0, trainTokens), val: write("val", trainTokens, total) },
  };
  const path = join(o.outDir, INDEX_FILE);
  writeFileSync(path + ".tmp", JSON.stringify(index, null, 2) + "\n");
  renameSync(path + ".tmp", path);
  return index;
}

/** Little-endian uint16 or uint32 bytes of the ids, whatever the host's byte order. */
export function encodeTokens(ids: Uint32Array, dtype: ShardIndex["dtype"]): Uint8Array {
  const width = bytesPerToken(dtype);
  const out = new Uint8Array(ids.length * width);
  const view = new DataView(out.buffer);
  if (width === 2) for (let i = 0; i < ids.length; i++) view.setUint16(2 * i, ids[i]!, true);
  else for (let i = 0; i < ids.length; i++) view.setUint32(4 * i, ids[i]!, true);
  return out;
}
