// hf_folder.ts: a Hugging Face model folder (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json) as a LoadedModel, and back: renames tensors to GGUF names, undoes
// HF's rotate_half row permutation of q/k and GPT-2's Conv1D transposes on read, redoes them on write.
// Tokenizer files are passed through on write; reading them is tokenizers/' job.

import { f32ToBf16Bits, f32ToF16Bits } from "../../core/dtype.js";
import type { LoadedModel, MetaValue, ModelConfig, TensorEntry } from "../types.js";
import { checkAgainstConfig } from "./expected_shapes.js";
import { requireNodeBuiltin } from "../../core/host.js";
import type { SourceRef } from "./file_source.js";
import { FormatError, sourceName } from "./file_source.js";
import { fileTensor } from "./file_tensor.js";
import { configFromHf, configToHf } from "./hf_config.js";
import type { HfLayout } from "./hf_names.js";
import { fromHfName, permuteRope, toHfName, transpose2d, unpermuteRope } from "./hf_names.js";
import type { SafetensorsDtype, SafetensorsOut } from "./safetensors.js";
import { readSafetensorsHeader, SAFETENSORS_DTYPES, writeSafetensors } from "./safetensors.js";

const nodeFs = () => requireNodeBuiltin("node:fs", "reading a Hugging Face model folder");
const join = (dir: string, name: string) => `${dir.replace(/\/+$/, "")}/${name}`;

/** A JSON object read from a file (config.json, tokenizer.json, ...), or a FormatError naming the file. */
export function readJsonObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = nodeFs().readFileSync(path, "utf8");
  } catch (err) {
    throw new FormatError(path, "file", (err as Error).message);
  }
  return parseJsonObject(text, path);
}

/** A JSON object from text (config.json, tokenizer.json), or a FormatError naming the file. */
export function parseJsonObject(text: string, path: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new FormatError(path, "contents", `not a JSON object (${(err as Error).message})`);
  }
}

/** The safetensors files of a folder: the index's shards, or the single model.safetensors. */
function shardFiles(dir: string): string[] {
  const { existsSync } = nodeFs();
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    const map = readJsonObject(index).weight_map;
    if (typeof map !== "object" || map === null || Array.isArray(map)) throw new FormatError(index, "weight_map", "missing or not an object");
    const files = new Map<string, string>();
    for (const [tensor, file] of Object.entries(map)) if (!files.has(file)) files.set(file, shardInFolder(dir, index, tensor, file));
    return [...files.values()];
  }
  const single = join(dir, "model.safetensors");
  if (!existsSync(single)) throw new FormatError(dir, "weights", "no model.safetensors or model.safetensors.index.json (kiln reads safetensors weights only)");
  return [single];
}

/**
 * The path of a shard the index names, which must be a file inside the model folder. NOTE: the admin
 * API loads models by path, so an index naming "../../etc/hostname" (or a symlink out of the folder)
 * must not make the server open files elsewhere.
 */
function shardInFolder(dir: string, index: string, tensor: string, file: unknown): string {
  const field = `weight_map['${tensor}']`;
  if (typeof file !== "string" || file === "") throw new FormatError(index, field, `${JSON.stringify(file)} is not a file name`);
  if (file.startsWith("/") || file.split(/[\\/]/).includes("..")) {
    throw new FormatError(index, field, `'${file}' leaves the model folder (shards must be files inside it)`);
  }
  const path = join(dir, file);
  const { realpathSync, existsSync } = nodeFs();
  if (!existsSync(path)) throw new FormatError(index, field, `'${file}' does not exist in ${dir}`);
  const [root, real] = [realpathSync(dir), realpathSync(path)];
  if (!real.startsWith(`${root.replace(/\/+$/, "")}/`)) throw new FormatError(index, field, `'${file}' resolves to ${real}, outside the model folder ${root}`);
  return path;
}

/** Maps stored values (HF layout, stored shape) to kiln's layout. */
function readFix(layout: HfLayout, stored: readonly number[]): { shape: number[]; fix?: (x: Float32Array) => Float32Array } {
  const [rows, cols] = [stored[0]!, stored[1] ?? 1];
  switch (layout.kind) {
    case "same":
      return { shape: [...stored] };
    case "rope":
      return { shape: [...stored], fix: (x) => unpermuteRope(x, rows, cols, layout.heads) };
    case "transpose":
      return { shape: [cols, rows], fix: (x) => transpose2d(x, rows, cols) };
  }
}

/** A Hugging Face folder as a LoadedModel (tensors read on demand). */
export function readHfFolder(dir: string): LoadedModel {
  const configPath = join(dir, "config.json");
  return hfModel(readJsonObject(configPath), configPath, shardFiles(dir), dir);
}

/**
 * A Hugging Face model from its parsed config.json and its safetensors shards (paths, or bytes a
 * browser read): tensors renamed and re-laid out for kiln, read on demand. `source` names the model.
 */
export function hfModel(cfg: Record<string, unknown>, configPath: string, shards: readonly SourceRef[], source: string): LoadedModel {
  const config = configFromHf(cfg, configPath);
  const tensors = new Map<string, TensorEntry>();
  for (const shard of shards) {
    const file = sourceName(shard);
    for (const t of readSafetensorsHeader(shard).tensors) {
      const mapped = fromHfName(t.name, config);
      if (mapped === null) continue;
      if (mapped === undefined) throw new FormatError(file, `tensor '${t.name}'`, `not a known ${config.arch} tensor name`);
      if (mapped.layout.kind !== "same" && t.shape.length !== 2) throw new FormatError(file, `tensor '${t.name}' shape`, `[${t.shape.join(", ")}] is not 2-D`);
      if (tensors.has(mapped.gguf)) throw new FormatError(file, `tensor '${t.name}'`, "appears twice");
      const { shape, fix } = readFix(mapped.layout, t.shape);
      tensors.set(mapped.gguf, fileTensor(shard, t.name, shape, SAFETENSORS_DTYPES[t.dtype].ggml, t.offset, fix));
    }
  }
  // NOTE: with tied embeddings transformers ignores a saved lm_head (it is the embedding).
  if (config.arch === "llama" && config.tiedEmbeddings) tensors.delete("output.weight");
  if (config.arch === "gpt2") tensors.delete("output.weight");
  const metadata = new Map<string, MetaValue>([["general.architecture", config.arch]]);
  if (typeof cfg._name_or_path === "string" && cfg._name_or_path) metadata.set("general.name", cfg._name_or_path);
  const model: LoadedModel = { config, tensors, source, metadata };
  checkAgainstConfig(model);
  return model;
}

export interface HfWriteOptions {
  /** tokenizer.json contents (a JSON value), written as given. */
  readonly tokenizerJson?: unknown;
  /** tokenizer_config.json contents (a JSON value), written as given. */
  readonly tokenizerConfig?: unknown;
  /** Stored dtype of the weights (default F32). */
  readonly dtype?: SafetensorsDtype;
}

function toBytes(x: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const conv = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = conv(x[i]!);
  return new Uint8Array(out.buffer);
}

function writeFix(layout: HfLayout, shape: readonly number[]): { shape: number[]; fix?: (x: Float32Array) => Float32Array } {
  const [rows, cols] = [shape[0]!, shape[1] ?? 1];
  switch (layout.kind) {
    case "same":
      return { shape: [...shape] };
    case "rope":
      return { shape: [...shape], fix: (x) => permuteRope(x, rows, cols, layout.heads) };
    case "transpose":
      return { shape: [cols, rows], fix: (x) => transpose2d(x, rows, cols) };
  }
}

function hfTensors(model: LoadedModel, dtype: SafetensorsDtype): SafetensorsOut[] {
  const cfg: ModelConfig = model.config;
  const out: SafetensorsOut[] = [];
  for (const [name, entry] of model.tensors) {
    const m = toHfName(name, cfg);
    if (!m) throw new Error(`hf writer: tensor '${name}' of ${model.source} has no Hugging Face ${cfg.arch} name`);
    const { shape, fix } = writeFix(m.layout, entry.shape);
    out.push({
      name: m.hf,
      dtype,
      shape,
      bytes() {
        const h = entry.read();
        if (h.dtype !== "f32") throw new Error(`hf writer: tensor '${name}' read as ${h.dtype}; expected f32`);
        const x = h.data as Float32Array;
        return toBytes(fix ? fix(x) : x, dtype);
      },
    });
  }
  return out;
}

/** Writes config.json, model.safetensors (streamed) and the tokenizer files given into `dir`. */
export function writeHfFolder(dir: string, model: LoadedModel, opts: HfWriteOptions = {}): void {
  const dtype = opts.dtype ?? "F32";
  const { mkdirSync, writeFileSync } = nodeFs();
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, "model.safetensors"), hfTensors(model, dtype));
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(configToHf(model.config, model.metadata, dtype), null, 2)}\n`);
  if (opts.tokenizerJson !== undefined) writeFileSync(join(dir, "tokenizer.json"), `${JSON.stringify(opts.tokenizerJson, null, 2)}\n`);
  if (opts.tokenizerConfig !== undefined) writeFileSync(join(dir, "tokenizer_config.json"), `${JSON.stringify(opts.tokenizerConfig, null, 2)}\n`);
}
