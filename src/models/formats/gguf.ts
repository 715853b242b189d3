// gguf.ts: parses a GGUF file's header (v2 and v3, little-endian): metadata with all 13 value types,
// tensor infos, alignment and where tensor data starts, and reads one tensor's bytes on demand.
// It does not interpret the metadata (gguf_model.ts maps it to a config) and never reads tensor data
// while parsing. Spec: ggml's docs/gguf.md.

import type { MetaValue } from "../types.js";
import { dequantize } from "./dequant.js";
import type { ByteSource, SourceRef } from "./file_source.js";
import { Cursor, FormatError, withSource } from "./file_source.js";
import type { GgmlTypeName } from "./ggml_types.js";
import { GGML_TYPES, ggmlByteSize, ggmlTypeFromId } from "./ggml_types.js";

/** GGUF metadata value types in id order (0..12). */
export const GGUF_VALUE_TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
/** A scalar's type, or an array's element type with "[]" appended ("string[]", "f32[]"). */
export type GgufMetaType = GgufValueType | `${GgufValueType}[]`;

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufTensorInfo {
  readonly name: string;
  /** PyTorch order (outermost first): GGUF's ne[] reversed. */
  readonly shape: readonly number[];
  readonly type: GgmlTypeName;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly metadata: Map<string, MetaValue>;
  /** The stored type of each metadata value (so a writer can keep u32 vs i32 vs f32). */
  readonly metadataTypes: Map<string, GgufMetaType>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute offset where tensor data starts (tensor offsets in the file are relative to it). */
  readonly dataOffset: number;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const toNum = (v: bigint): number | bigint => (v <= SAFE && v >= MIN_SAFE ? Number(v) : v);

const TYPED: Partial<Record<GgufValueType, { size: number; make: (b: ArrayBuffer) => ArrayLike<number> }>> = {
  u8: { size: 1, make: (b) => new Uint8Array(b) },
  i8: { size: 1, make: (b) => new Int8Array(b) },
  u16: { size: 2, make: (b) => new Uint16Array(b) },
  i16: { size: 2, make: (b) => new Int16Array(b) },
  u32: { size: 4, make: (b) => new Uint32Array(b) },
  i32: { size: 4, make: (b) => new Int32Array(b) },
  f32: { size: 4, make: (b) => new Float32Array(b) },
  f64: { size: 8, make: (b) => new Float64Array(b) },
};

function valueType(c: Cursor, field: string): GgufValueType {
  const id = c.u32(`${field} (value type)`);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) throw new FormatError(c.src.path, field, `unknown metadata value type ${id} (known: 0..12)`);
  return t;
}

function readString(c: Cursor, field: string): string {
  return c.text(c.size64(`${field} (string length)`), field);
}

function readValue(c: Cursor, t: GgufValueType, field: string): MetaValue {
  switch (t) {
    case "u8": return c.u8(field);
    case "i8": return c.i8(field);
    case "u16": return c.u16(field);
    case "i16": return c.i16(field);
    case "u32": return c.u32(field);
    case "i32": return c.i32(field);
    case "f32": return c.f32(field);
    case "f64": return c.f64(field);
    case "u64": return toNum(c.u64(field));
    case "i64": return toNum(c.i64(field));
    case "bool": {
      const b = c.u8(field);
      if (b > 1) throw new FormatError(c.src.path, field, `bool value ${b} is not 0 or 1`);
      return b === 1;
    }
    case "string": return readString(c, field);
    case "array": return readArray(c, field).value;
    default: return assertNever(t);
  }
}

/** The fewest bytes one value of a type takes in the file (a string: its u64 length; an array: type and length). */
const MIN_BYTES: Record<GgufValueType, number> = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 8, array: 12 };

/** A count read from the header, checked against the bytes left before anything is sized from it. */
function count(c: Cursor, field: string, minBytesEach: number): number {
  const n = c.size64(field);
  const left = c.src.size - c.pos;
  if (n * minBytesEach > left) {
    throw new FormatError(c.src.path, field, `${n} entries of at least ${minBytesEach} bytes each do not fit the ${left} bytes left in the file (corrupt or truncated?)`);
  }
  return n;
}

function readArray(c: Cursor, field: string): { value: MetaValue; elem: GgufValueType } {
  const elem = valueType(c, `${field} (array element type)`);
  // NOTE: checked against the bytes left, so a corrupt length fails here instead of allocating.
  const n = count(c, `${field} (array length)`, MIN_BYTES[elem]);
  const typed = TYPED[elem];
  if (typed) {
    const bytes = c.bytes(n * typed.size, field);
    return { value: typed.make(bytes.buffer), elem };
  }
  const out: MetaValue[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readValue(c, elem, `${field}[${i}]`);
  return { value: out, elem };
}

function assertNever(x: never): never {
  throw new Error(`gguf: unhandled value type ${String(x)}`);
}

/** Parses the header of a GGUF file (metadata + tensor infos). Tensor data is read later, on demand. */
export function readGguf(ref: SourceRef): GgufFile {
  return withSource(ref, parse);
}

function parse(src: ByteSource): GgufFile {
  const path = src.path;
  const c = new Cursor(src);
  if (src.size < 4) throw new FormatError(path, "magic", `file is ${src.size} bytes, too short for a GGUF header`);
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const text = String.fromCharCode(magic & 0xff, (magic >> 8) & 0xff, (magic >> 16) & 0xff, magic >>> 24);
    throw new FormatError(path, "magic", `expected "GGUF", found ${JSON.stringify(text)} (0x${magic.toString(16).padStart(8, "0")})`);
  }
  const version = c.u32("version");
  if (version === 1) throw new FormatError(path, "version", "GGUF v1 is not supported (kiln reads v2 and v3)");
  if (version !== 2 && version !== 3) {
    const hint = (version & 0xffff) === 0 ? " (a big-endian file? kiln reads little-endian GGUF only)" : "";
    throw new FormatError(path, "version", `unsupported GGUF version ${version}${hint} (kiln reads v2 and v3)`);
  }
  // NOTE: a metadata entry takes at least a key length, a value type and a byte; a tensor info at least
  // a name length, n_dims, one dim, a type and an offset.
  const nTensors = count(c, "tensor_count", 8 + 4 + 8 + 4 + 8);
  const nKv = count(c, "metadata_kv_count", 8 + 4 + 1);

  const metadata = new Map<string, MetaValue>();
  const metadataTypes = new Map<string, GgufMetaType>();
  for (let i = 0; i < nKv; i++) {
    const key = readString(c, `metadata key #${i}`);
    if (metadata.has(key)) throw new FormatError(path, `metadata '${key}'`, "duplicate key");
    const t = valueType(c, `metadata '${key}'`);
    if (t === "array") {
      const { value, elem } = readArray(c, `metadata '${key}'`);
      metadata.set(key, value);
      metadataTypes.set(key, `${elem}[]`);
    } else {
      metadata.set(key, readValue(c, t, `metadata '${key}'`));
      metadataTypes.set(key, t);
    }
  }

  const alignment = metadata.get("general.alignment") ?? GGUF_DEFAULT_ALIGNMENT;
  if (typeof alignment !== "number" || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new FormatError(path, "metadata 'general.alignment'", `must be a positive power of two, got ${String(alignment)}`);
  }

  const raw: { name: string; shape: number[]; type: GgmlTypeName; rel: number; nbytes: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = readString(c, `tensor info #${i} name`);
    if (names.has(name)) throw new FormatError(path, `tensor '${name}'`, "duplicate tensor name");
    names.add(name);
    const nDims = c.u32(`tensor '${name}' n_dims`);
    if (nDims < 1 || nDims > 4) throw new FormatError(path, `tensor '${name}' n_dims`, `${nDims} is not in 1..4`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = c.size64(`tensor '${name}' dims[${d}]`);
      if (n < 1) throw new FormatError(path, `tensor '${name}' dims[${d}]`, `dimension ${n} is not positive`);
      ne.push(n);
    }
    const type = ggmlTypeFromId(c.u32(`tensor '${name}' type`), path, name);
    const rel = c.size64(`tensor '${name}' offset`);
    if (rel % alignment !== 0) throw new FormatError(path, `tensor '${name}' offset`, `${rel} is not a multiple of the alignment ${alignment}`);
    const count = ne.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count) || count > 8 * src.size) {
      throw new FormatError(path, `tensor '${name}' dims`, `[${ne.join(", ")}] has more elements than the file (${src.size} bytes) can hold`);
    }
    // NOTE: ggml quantizes along rows (ne[0]): a row must be a whole number of blocks.
    const block = GGML_TYPES[type].blockElems;
    if (ne[0]! % block !== 0) {
      throw new FormatError(path, `tensor '${name}' dims[0]`, `${ne[0]} is not a multiple of the ${type} block size ${block}`);
    }
    raw.push({ name, shape: ne.reverse(), type, rel, nbytes: ggmlByteSize(type, count, path, name) });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  // NOTE: vocab-only files (n_tensors 0) may end right after the header, before the aligned data start.
  const tensors = raw.map((t): GgufTensorInfo => {
    const offset = dataOffset + t.rel;
    if (offset + t.nbytes > src.size) {
      throw new FormatError(path, `tensor '${t.name}' data`, `bytes ${offset}..${offset + t.nbytes} run past the end of the file (${src.size} bytes; truncated?)`);
    }
    return { name: t.name, shape: t.shape, type: t.type, offset, nbytes: t.nbytes };
  });
  return { path, version, metadata, metadataTypes, tensors, alignment, dataOffset };
}

/** Reads one tensor's data from the file and dequantizes it to f32 (PyTorch-order, row-major). */
export function readGgufTensor(ref: SourceRef, info: GgufTensorInfo): Float32Array {
  const bytes = withSource(ref, (src) => src.read(info.offset, info.nbytes, `tensor '${info.name}' data`));
  return dequantize(info.type, bytes, info.shape.reduce((a, b) => a * b, 1));
}
