// gguf_writer.ts: writes a LoadedModel as a GGUF v3 file (alignment 32): architecture metadata from
// the config, tokenizer metadata passed through, then the tensors, read and encoded one at a time and
// streamed to the file (f32, f16, q8_0, q4_0 or q4_k). It owns the metadata value encoding and the tensor type
// policy; it does not build tokenizer metadata (tokenizers/ does).

import { basename } from "node:path";
import type { LoadedModel, MetaValue, ModelConfig, TensorEntry } from "../types.js";
import { encodeF16, encodeF32, encodeQ4_0, encodeQ8_0 } from "./dequant.js";
import { encodeQ4K } from "./encode_q4k.js";
import { writeFileAtomically } from "./file_source.js";
import { memoryTensor, numel } from "./file_tensor.js";
import type { GgufMetaType, GgufValueType } from "./gguf.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPES } from "./gguf.js";
import type { GgmlTypeName } from "./ggml_types.js";
import { GGML_TYPES, ggmlByteSize } from "./ggml_types.js";
import { llama3RopeFactors, ROPE_FREQS } from "./rope_freqs.js";

export type GgufWriteType = "f32" | "f16" | "q8_0" | "q4_0" | "q4_k";

export interface GgufWriteOptions {
  /** tokenizer.ggml.* keys (and any others) to store; default: the model's own tokenizer.* metadata. */
  readonly tokenizerMetadata?: ReadonlyMap<string, MetaValue>;
  /** Stored types for metadata values where inference would guess wrong (e.g. an integral f32). */
  readonly metadataTypes?: ReadonlyMap<string, GgufMetaType>;
  /** How 2-D tensors are stored (default f32); 1-D tensors (norms, biases) always stay f32, as in llama.cpp. */
  readonly types?: GgufWriteType;
}

/** general.file_type values (llama.cpp's llama_ftype). */
// NOTE: q4_k writes every matrix as Q4_K (llama.cpp's "pure" mix), filed as LLAMA_FTYPE_MOSTLY_Q4_K_S (14).
const FILE_TYPE: Record<GgufWriteType, number> = { f32: 0, f16: 1, q8_0: 7, q4_0: 2, q4_k: 14 };

const SCALAR_BYTES = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8 } as const;

function assertNever(x: never): never {
  throw new Error(`gguf writer: unhandled value type ${String(x)}`);
}

class ByteWriter {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  scalar(t: Exclude<GgufValueType, "string" | "array">, v: number | bigint | boolean): void {
    const dv = new DataView(new ArrayBuffer(SCALAR_BYTES[t]));
    switch (t) {
      case "u8": dv.setUint8(0, Number(v)); break;
      case "i8": dv.setInt8(0, Number(v)); break;
      case "bool": dv.setUint8(0, v ? 1 : 0); break;
      case "u16": dv.setUint16(0, Number(v), true); break;
      case "i16": dv.setInt16(0, Number(v), true); break;
      case "u32": dv.setUint32(0, Number(v), true); break;
      case "i32": dv.setInt32(0, Number(v), true); break;
      case "f32": dv.setFloat32(0, Number(v), true); break;
      case "f64": dv.setFloat64(0, Number(v), true); break;
      case "u64": dv.setBigUint64(0, BigInt(v as number | bigint), true); break;
      case "i64": dv.setBigInt64(0, BigInt(v as number | bigint), true); break;
      default: assertNever(t);
    }
    this.push(new Uint8Array(dv.buffer));
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.scalar("u64", b.length);
    this.push(b);
  }
  bytes(b: Uint8Array): void {
    this.push(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function typedArrayType(v: ArrayLike<number>): GgufValueType | undefined {
  if (v instanceof Float32Array) return "f32";
  if (v instanceof Float64Array) return "f64";
  if (v instanceof Int32Array) return "i32";
  if (v instanceof Uint32Array) return "u32";
  if (v instanceof Int16Array) return "i16";
  if (v instanceof Uint16Array) return "u16";
  if (v instanceof Int8Array) return "i8";
  if (v instanceof Uint8Array) return "u8";
  return undefined;
}

function inferScalar(v: MetaValue, key: string): GgufValueType {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "bigint") return v < 0n ? "i64" : "u64";
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return "f32";
    if (v >= 0) return v <= 0xffffffff ? "u32" : "u64";
    return v >= -0x80000000 ? "i32" : "i64";
  }
  if (typeof v === "object" && v !== null) return "array";
  throw new Error(`gguf writer: metadata '${key}' has a value of type ${typeof v}`);
}

/** The element type of an array value: from the typed array, or the widest of its elements. */
function inferElement(v: ArrayLike<MetaValue>, key: string): GgufValueType {
  const typed = typedArrayType(v as ArrayLike<number>);
  if (typed) return typed;
  if (v.length === 0) return "u32";
  const kinds = new Set<GgufValueType>();
  for (let i = 0; i < v.length; i++) kinds.add(inferScalar(v[i]!, key));
  if (kinds.size === 1) return [...kinds][0]!;
  for (const t of ["string", "array", "bool"] as const) if (kinds.has(t)) throw new Error(`gguf writer: metadata '${key}' mixes ${[...kinds].join(", ")}`);
  if (kinds.has("f32")) return "f32";
  if (kinds.has("i64") || kinds.has("u64")) return "i64";
  return "i32";
}

function writeValue(w: ByteWriter, t: GgufValueType, v: MetaValue, key: string, elem?: GgufValueType): void {
  if (t === "string") return w.string(String(v));
  if (t !== "array") {
    if (typeof v === "object" || typeof v === "string") throw new Error(`gguf writer: metadata '${key}' is declared ${t} but holds ${typeof v === "string" ? "a string" : "an array"}`);
    return w.scalar(t, v);
  }
  const arr = v as ArrayLike<MetaValue>;
  const et = elem ?? inferElement(arr, key);
  w.scalar("u32", GGUF_VALUE_TYPES.indexOf(et));
  w.scalar("u64", arr.length);
  const typed = typedArrayType(arr as ArrayLike<number>);
  if (typed === et) {
    const t = arr as unknown as Uint8Array;
    // NOTE: typed arrays are little-endian on every platform Node runs on; copy so the view is standalone.
    w.bytes(new Uint8Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength)));
    return;
  }
  for (let i = 0; i < arr.length; i++) writeValue(w, et, arr[i]!, `${key}[${i}]`);
}

function configMetadata(c: ModelConfig): [string, MetaValue, GgufValueType][] {
  if (c.arch === "gpt2") {
    return [
      ["gpt2.context_length", c.maxSeqLen, "u32"],
      ["gpt2.embedding_length", c.dim, "u32"],
      ["gpt2.feed_forward_length", 4 * c.dim, "u32"],
      ["gpt2.block_count", c.nLayers, "u32"],
      ["gpt2.attention.head_count", c.nHeads, "u32"],
      ["gpt2.attention.layer_norm_epsilon", c.normEps, "f32"],
    ];
  }
  const out: [string, MetaValue, GgufValueType][] = [
    ["llama.vocab_size", c.vocabSize, "u32"],
    ["llama.context_length", c.maxSeqLen, "u32"],
    ["llama.embedding_length", c.dim, "u32"],
    ["llama.block_count", c.nLayers, "u32"],
    ["llama.feed_forward_length", c.hiddenDim, "u32"],
    ["llama.rope.dimension_count", c.headDim, "u32"],
    ["llama.attention.head_count", c.nHeads, "u32"],
    ["llama.attention.head_count_kv", c.nKvHeads, "u32"],
    ["llama.attention.layer_norm_rms_epsilon", c.normEps, "f32"],
    ["llama.rope.freq_base", c.ropeTheta, "f32"],
  ];
  if (c.headDim * c.nHeads !== c.dim) {
    out.push(["llama.attention.key_length", c.headDim, "u32"], ["llama.attention.value_length", c.headDim, "u32"]);
  }
  if (c.ropeScaling?.type === "linear") {
    out.push(["llama.rope.scaling.type", "linear", "string"], ["llama.rope.scaling.factor", c.ropeScaling.factor, "f32"]);
  }
  if (c.ropeScaling?.type === "llama3" && c.ropeScaling.originalMaxPositions !== undefined) {
    // NOTE: llama.cpp reads this key for YaRN only; kiln reads it back to recover the llama3 parameters exactly.
    out.push(["llama.rope.scaling.original_context_length", c.ropeScaling.originalMaxPositions, "u32"]);
  }
  return out;
}

/** The type a tensor is stored as under the requested policy. */
function storedType(shape: readonly number[], want: GgufWriteType): GgmlTypeName {
  if (shape.length < 2 || want === "f32") return "f32";
  // NOTE: a row that is not whole blocks cannot be a block format; llama.cpp's quantize falls back the same way.
  const row = shape[shape.length - 1]!;
  // NOTE: a Q4_K row must be whole 256-element super-blocks; llama.cpp falls back to Q5_0 there, kiln (which
  // writes no Q5_0) to Q8_0, then f16.
  if (want === "q4_k" && row % GGML_TYPES.q4_k.blockElems !== 0) return row % GGML_TYPES.q8_0.blockElems === 0 ? "q8_0" : "f16";
  if ((want === "q8_0" || want === "q4_0") && row % GGML_TYPES[want].blockElems !== 0) return "f16";
  return want;
}

function encode(type: GgmlTypeName, x: Float32Array): Uint8Array {
  if (type === "f32") return encodeF32(x);
  if (type === "f16") return encodeF16(x);
  if (type === "q8_0") return encodeQ8_0(x);
  if (type === "q4_0") return encodeQ4_0(x);
  if (type === "q4_k") return encodeQ4K(x);
  throw new Error(`gguf writer: cannot encode ${type}`);
}

function readF32(name: string, t: TensorEntry): Float32Array {
  const h = t.read();
  if (h.dtype !== "f32") throw new Error(`gguf writer: tensor '${name}' read as ${h.dtype}; expected f32`);
  return h.data as Float32Array;
}

/** The model's tensors, plus rope_freqs.weight when the config has Llama 3.1 RoPE scaling. */
function tensorsToWrite(model: LoadedModel): [string, TensorEntry][] {
  const all = [...model.tensors].filter(([name]) => name !== ROPE_FREQS);
  const c = model.config;
  if (c.arch === "llama" && c.ropeScaling?.type === "llama3") {
    // NOTE: llama.cpp has no llama3 scaling keys: it divides each frequency by this tensor's factor.
    all.push([ROPE_FREQS, memoryTensor([c.headDim / 2], llama3RopeFactors(c.ropeScaling, c.headDim, c.ropeTheta))]);
  }
  return all;
}

interface Planned {
  readonly name: string;
  readonly entry: TensorEntry;
  readonly type: GgmlTypeName;
  /** Relative to the start of the data section. */
  readonly offset: number;
  readonly nbytes: number;
}

/** The header bytes (metadata + tensor infos, unpadded) and where each tensor's data goes. */
function buildHeader(model: LoadedModel, want: GgufWriteType, opts: GgufWriteOptions): { header: Uint8Array; plan: Planned[] } {
  const meta: [string, MetaValue, GgufMetaType | undefined][] = [
    ["general.architecture", model.config.arch, "string"],
    ["general.name", String(model.metadata.get("general.name") ?? basename(model.source).replace(/\.[^.]*$/, "")), "string"],
    ["general.file_type", FILE_TYPE[want], "u32"],
    ...(want === "q8_0" || want === "q4_0" || want === "q4_k" ? [["general.quantization_version", 2, "u32"] as [string, MetaValue, GgufMetaType]] : []),
    ...configMetadata(model.config),
  ];
  const tok = opts.tokenizerMetadata ?? new Map([...model.metadata].filter(([k]) => k.startsWith("tokenizer.")));
  const taken = new Set(meta.map(([k]) => k));
  for (const [k, v] of tok) if (!taken.has(k)) meta.push([k, v, opts.metadataTypes?.get(k)]);

  const w = new ByteWriter();
  w.scalar("u32", GGUF_MAGIC);
  w.scalar("u32", 3);
  const all = tensorsToWrite(model);
  w.scalar("u64", all.length);
  w.scalar("u64", meta.length);
  for (const [key, value, declared] of meta) {
    w.string(key);
    const t = declared ?? inferScalar(value, key);
    const [base, isArray] = t.endsWith("[]") ? [t.slice(0, -2) as GgufValueType, true] : [t as GgufValueType, t === "array"];
    w.scalar("u32", GGUF_VALUE_TYPES.indexOf(isArray ? "array" : base));
    writeValue(w, isArray ? "array" : base, value, key, isArray && base !== "array" ? base : undefined);
  }
  const plan: Planned[] = [];
  let offset = 0;
  for (const [name, entry] of all) {
    const type = storedType(entry.shape, want);
    const nbytes = ggmlByteSize(type, numel(entry.shape), model.source, name);
    w.string(name);
    w.scalar("u32", entry.shape.length);
    for (const n of [...entry.shape].reverse()) w.scalar("u64", n); // GGUF lists ne[0] (innermost) first
    w.scalar("u32", GGML_TYPES[type].id);
    w.scalar("u64", offset);
    plan.push({ name, entry, type, offset, nbytes });
    offset = Math.ceil((offset + nbytes) / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
  }
  return { header: w.concat(), plan };
}

/** Writes `model` to `path` as GGUF v3. The file appears only when complete (written to path.tmp, then renamed). */
export function writeGguf(path: string, model: LoadedModel, opts: GgufWriteOptions = {}): void {
  const { header, plan } = buildHeader(model, opts.types ?? "f32", opts);
  const dataStart = Math.ceil(header.length / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
  writeFileAtomically(path, (put) => {
    put(header);
    put(new Uint8Array(dataStart - header.length));
    let at = 0;
    for (const p of plan) {
      put(new Uint8Array(p.offset - at));
      const bytes = encode(p.type, readF32(p.name, p.entry));
      if (bytes.length !== p.nbytes) throw new Error(`gguf writer: tensor '${p.name}' encoded to ${bytes.length} bytes, expected ${p.nbytes}`);
      put(bytes);
      at = p.offset + p.nbytes;
    }
  });
}
