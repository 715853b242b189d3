// model_file_targets.ts: what the model-file fuzz damages and reads. Each target is one reader fed a
// real file from the repository (the tiny GGUF, a GGUF vocabulary, stories260K as llama2.c, as a
// Hugging Face folder and as tokenizer.json, its llama2.c tokenizer) through the mutations of
// mutations.ts, and runs the reader as kiln does: parse, map to a config, read every tensor, build and
// use the tokenizer. runCase judges one case: it loaded, or it threw an Error that names the file
// (not a RangeError or TypeError from deep inside), within the time bound.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { MemorySource } from "../../src/models/formats/file_source.js";
import { readGguf } from "../../src/models/formats/gguf.js";
import { loadGguf } from "../../src/models/formats/gguf_model.js";
import { hfModel, parseJsonObject, readHfFolder, writeHfFolder } from "../../src/models/formats/hf_folder.js";
import { readLlama2c } from "../../src/models/formats/llama2c.js";
import { createTokenizer, parseLlama2cTokenizer, tokenizerFromGguf, tokenizerFromHfJson, tokenizerToHfJson } from "../../src/models/tokenizers/index.js";
import type { LoadedModel } from "../../src/models/types.js";
import { fixture, repoFile, STORIES260K_BIN, TINY_GGUF } from "../helpers/fixtures.js";
import type { ByteMutation, IntField, JsonMutation } from "./mutations.js";
import { applyBytes, applyJson, byteMutation, fieldMutation, jsonMutation } from "./mutations.js";

export interface FuzzTarget {
  readonly name: string;
  /** What it reads, for the report. */
  readonly reads: string;
  /** An error must name one of these (the file, or the folder's file it is about). */
  readonly names: readonly string[];
  readonly input: fc.Arbitrary<unknown>;
  /** Loads the mutated file as kiln would; throws what the reader throws. */
  run(input: unknown): void;
}

export type Outcome = { readonly kind: "loaded" | "refused"; readonly ms: number } | { readonly kind: "bad-error"; readonly ms: number; readonly error: string };

const TEXT = "Once upon a time, Lily saw a ünïcode 🙂 cat.\n";
const mutations = <T>(one: fc.Arbitrary<T>) => fc.array(one, { minLength: 1, maxLength: 3 });

/** Reads every tensor of a model (dequantizing it), as uploading it to a backend does. */
function readAll(m: LoadedModel): void {
  for (const t of m.tensors.values()) t.read();
}

/** A safetensors file split into its JSON header and its data. */
function splitSafetensors(b: Uint8Array): { header: unknown; data: Uint8Array } {
  const len = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + len))), data: b.subarray(8 + len) };
}

function joinSafetensors(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/**
 * The integer fields of a GGUF header (counts, string and array lengths, scalar metadata values, tensor
 * dims, types and offsets), so that lying values land where the reader takes sizes from. Elements of
 * arrays are skipped, except the first few string lengths.
 */
function ggufFields(b: Uint8Array): IntField[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: IntField[] = [];
  let at = 0;
  const int = (bytes: 4 | 8): number => {
    if (at + bytes > b.length) throw new Error(`ggufFields: field at ${at} runs past the end (${b.length} bytes)`);
    out.push({ at, bytes });
    const x = bytes === 4 ? v.getUint32(at, true) : Number(v.getBigUint64(at, true));
    at += bytes;
    return x;
  };
  const str = (): void => {
    const n = int(8);
    at += n;
  };
  const SIZES = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  const value = (type: number): void => {
    if (type === 8) str();
    else if (type === 9) {
      const elem = int(4);
      const n = int(8);
      if (elem === 8) for (let i = 0; i < n; i++) if (i < 3) str(); else at += 8 + Number(v.getBigUint64(at, true));
      else at += n * SIZES[elem]!;
    } else if (SIZES[type] === 4 || SIZES[type] === 8) int(SIZES[type] as 4 | 8);
    else at += SIZES[type]!;
  };
  at = 8;
  const nTensors = int(8);
  const nKv = int(8);
  for (let i = 0; i < nKv; i++) {
    str();
    value(int(4));
  }
  for (let i = 0; i < nTensors; i++) {
    str();
    const dims = int(4);
    for (let d = 0; d < dims; d++) int(8);
    int(4);
    int(8);
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Mutations of a JSON file: of its tree (re-serialized) or of its bytes. */
type JsonInput = { readonly tree: readonly JsonMutation[] } | { readonly bytes: readonly ByteMutation[] };
function jsonInput(text: string): fc.Arbitrary<JsonInput> {
  const size = encoder.encode(text).length;
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ tree: mutations(jsonMutation) }) },
    { weight: 1, arbitrary: fc.record({ bytes: mutations(byteMutation(size, size)) }) },
  );
}
function applyJsonInput(text: string, parsed: unknown, m: JsonInput): string {
  return "tree" in m ? JSON.stringify(applyJson(parsed, m.tree)) : decoder.decode(applyBytes(encoder.encode(text), m.bytes));
}

/** The targets, with a scratch folder for the Hugging Face ones; call dispose() when done. */
export function fuzzTargets(): { targets: FuzzTarget[]; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-fuzz-"));
  const stories = readLlama2c(STORIES260K_BIN);

  const ggufBytes = new Uint8Array(readFileSync(TINY_GGUF));
  const ggufName = "fuzz/llama-2-tiny-random.gguf";
  const ggufHeader = readGguf(TINY_GGUF).dataOffset;
  const gguf: FuzzTarget = {
    name: "gguf-model",
    reads: "GGUF model (tiny Llama, 1.7 MB): header, config, every tensor",
    names: [ggufName],
    input: mutations(fc.oneof(byteMutation(ggufBytes.length, ggufHeader), fieldMutation(ggufFields(ggufBytes)))),
    run: (ms) => readAll(loadGguf(new MemorySource(ggufName, applyBytes(ggufBytes, ms as ByteMutation[])))),
  };

  const vocabPath = fixture("ggml-vocab/ggml-vocab-llama-spm.gguf");
  const vocabBytes = new Uint8Array(readFileSync(vocabPath));
  const vocabName = "fuzz/ggml-vocab-llama-spm.gguf";
  const vocab: FuzzTarget = {
    name: "gguf-tokenizer",
    reads: "GGUF vocabulary (Llama SPM, 32000 tokens): header, tokenizer, encode and decode",
    names: [vocabName],
    input: mutations(fc.oneof(byteMutation(vocabBytes.length, vocabBytes.length), fieldMutation(ggufFields(vocabBytes)))),
    run: (ms) => {
      const g = readGguf(new MemorySource(vocabName, applyBytes(vocabBytes, ms as ByteMutation[])));
      const tok = tokenizerFromGguf(g.metadata, vocabName);
      tok.decode(tok.encode(TEXT));
    },
  };

  const hfDir = join(dir, "hf");
  writeHfFolder(hfDir, stories);
  const cfgPath = join(hfDir, "config.json");
  const cfgText = readFileSync(cfgPath, "utf8");
  const cfgJson = JSON.parse(cfgText) as unknown;
  const stPath = join(hfDir, "model.safetensors");
  const stBytes = new Uint8Array(readFileSync(stPath));
  const st = splitSafetensors(stBytes);
  type StInput = { readonly bytes: readonly ByteMutation[] } | { readonly header: readonly JsonMutation[] } | { readonly config: JsonInput };
  const safetensors: FuzzTarget = {
    name: "safetensors",
    reads: "Hugging Face folder (stories260K): config.json, model.safetensors, every tensor",
    names: [cfgPath, stPath, hfDir],
    input: fc.oneof(
      { weight: 2, arbitrary: fc.record({ bytes: mutations(byteMutation(stBytes.length, stBytes.length - st.data.length)) }) },
      { weight: 2, arbitrary: fc.record({ header: mutations(jsonMutation) }) },
      { weight: 1, arbitrary: fc.record({ config: jsonInput(cfgText) }) },
    ) as fc.Arbitrary<StInput>,
    run: (input) => {
      const m = input as StInput;
      const bytes = "bytes" in m ? applyBytes(stBytes, m.bytes) : "header" in m ? joinSafetensors(applyJson(st.header, m.header), st.data) : stBytes;
      const cfg = "config" in m ? applyJsonInput(cfgText, cfgJson, m.config) : cfgText;
      readAll(hfModel(parseJsonObject(cfg, cfgPath), cfgPath, [new MemorySource(stPath, bytes)], hfDir));
    },
  };

  // NOTE: the index is read from disk (readHfFolder resolves its shard paths in the folder).
  const idxDir = join(dir, "indexed");
  mkdirSync(idxDir);
  writeHfFolder(idxDir, stories);
  const idxPath = join(idxDir, "model.safetensors.index.json");
  const names = Object.keys(st.header as object).filter((k) => k !== "__metadata__");
  const idxText = JSON.stringify({ metadata: { total_size: st.data.length }, weight_map: Object.fromEntries(names.map((n) => [n, "model.safetensors"])) });
  const idxJson = JSON.parse(idxText) as unknown;
  const index: FuzzTarget = {
    name: "safetensors-index",
    reads: "Hugging Face folder with model.safetensors.index.json (stories260K): the weight_map's shards",
    names: [idxDir],
    input: jsonInput(idxText),
    run: (m) => {
      writeFileSync(idxPath, applyJsonInput(idxText, idxJson, m as JsonInput));
      readAll(readHfFolder(idxDir));
    },
  };

  const binBytes = new Uint8Array(readFileSync(STORIES260K_BIN));
  const binName = "fuzz/stories260K.bin";
  const llama2c: FuzzTarget = {
    name: "llama2c-model",
    reads: "llama2.c checkpoint (stories260K, 1 MB): header, file length, every tensor",
    names: [binName],
    input: mutations(fc.oneof(byteMutation(binBytes.length, 28), fieldMutation(Array.from({ length: 7 }, (_, i) => ({ at: 4 * i, bytes: 4 as const }))))),
    run: (ms) => readAll(readLlama2c(new MemorySource(binName, applyBytes(binBytes, ms as ByteMutation[])))),
  };

  const tokPath = repoFile("models/stories260K/tok512.bin");
  const tokBytes = new Uint8Array(readFileSync(tokPath));
  const tokName = "fuzz/tok512.bin";
  const llama2cTok: FuzzTarget = {
    name: "llama2c-tokenizer",
    reads: "llama2.c tokenizer (tok512.bin): 512 tokens, encode and decode",
    names: [tokName],
    input: mutations(byteMutation(tokBytes.length, tokBytes.length)),
    run: (ms) => {
      const tok = createTokenizer(parseLlama2cTokenizer(applyBytes(tokBytes, ms as ByteMutation[]), tokName, 512), tokName);
      tok.decode(tok.encode(TEXT));
    },
  };

  const hfTokText = JSON.stringify(tokenizerToHfJson(createTokenizer(parseLlama2cTokenizer(tokBytes, tokPath, 512), tokPath)));
  const hfTokJson = JSON.parse(hfTokText) as unknown;
  const hfTokName = "fuzz/tokenizer.json";
  const hfTok: FuzzTarget = {
    name: "tokenizer-json",
    reads: "tokenizer.json (stories260K's 512-token SentencePiece BPE): encode and decode",
    names: [hfTokName],
    input: jsonInput(hfTokText),
    run: (m) => {
      const tok = tokenizerFromHfJson(parseJsonObject(applyJsonInput(hfTokText, hfTokJson, m as JsonInput), hfTokName), undefined, hfTokName);
      tok.decode(tok.encode(TEXT));
    },
  };

  return { targets: [gguf, vocab, safetensors, index, llama2c, llama2cTok, hfTok], dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs one case: it loaded, it was refused with an error naming the file, or it failed otherwise. */
export function runCase(target: FuzzTarget, input: unknown): Outcome {
  const t0 = performance.now();
  try {
    target.run(input);
    return { kind: "loaded", ms: performance.now() - t0 };
  } catch (err) {
    const ms = performance.now() - t0;
    const e = err as Error;
    const internal = !(err instanceof Error) || err instanceof RangeError || err instanceof TypeError || err instanceof SyntaxError || err instanceof ReferenceError;
    if (internal || !target.names.some((n) => e.message.includes(n))) return { kind: "bad-error", ms, error: String(err instanceof Error ? `${e.name}: ${e.message}` : err).slice(0, 300) };
    return { kind: "refused", ms };
  }
}
