// safetensors.ts: the safetensors container: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}} (plus optional "__metadata__"), then raw little-endian data.
// It parses and validates headers and streams files out one tensor at a time; it knows nothing of
// model names or configs (hf_folder.ts maps those).

import type { SourceRef } from "./file_source.js";
import { FormatError, withSource, writeFileAtomically } from "./file_source.js";
import { numel } from "./file_tensor.js";

/** The safetensors dtypes kiln reads and writes, with their GGML type names for dequantization. */
export const SAFETENSORS_DTYPES = { F32: { size: 4, ggml: "f32" }, F16: { size: 2, ggml: "f16" }, BF16: { size: 2, ggml: "bf16" } } as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute offset of the data in the file. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly tensors: readonly SafetensorsTensor[];
  readonly metadata: Readonly<Record<string, string>>;
}

const MAX_HEADER = 100 * 1024 * 1024;

export function readSafetensorsHeader(ref: SourceRef): SafetensorsHeader {
  return withSource(ref, (src) => {
    const path = src.path;
    if (src.size < 8) throw new FormatError(path, "header length", `file is ${src.size} bytes, too short for a safetensors file`);
    const len = new DataView(src.read(0, 8, "header length").buffer).getBigUint64(0, true);
    if (len > BigInt(Math.min(MAX_HEADER, src.size - 8))) {
      throw new FormatError(path, "header length", `${len} bytes does not fit the file (${src.size} bytes; not safetensors, or truncated?)`);
    }
    const text = new TextDecoder().decode(src.read(8, Number(len), "header"));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new FormatError(path, "header", `not valid JSON (${(err as Error).message})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new FormatError(path, "header", "is not a JSON object");
    const dataStart = 8 + Number(len);
    const tensors: SafetensorsTensor[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === "string")) {
          throw new FormatError(path, "__metadata__", "is not an object of strings");
        }
        metadata = v as Record<string, string>;
        continue;
      }
      tensors.push(tensorInfo(path, name, v, dataStart, src.size));
    }
    return { path, tensors, metadata };
  });
}

function tensorInfo(path: string, name: string, v: unknown, dataStart: number, size: number): SafetensorsTensor {
  const field = `tensor '${name}'`;
  const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e !== "object" || e === null) throw new FormatError(path, field, "header entry is not an object");
  if (typeof e.dtype !== "string" || !(e.dtype in SAFETENSORS_DTYPES)) {
    throw new FormatError(path, `${field} dtype`, `${JSON.stringify(e.dtype)} is not supported (kiln reads ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0)) throw new FormatError(path, `${field} shape`, `${JSON.stringify(shape)} is not a list of sizes`);
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((n) => Number.isInteger(n) && n >= 0) || offs[1] < offs[0]) {
    throw new FormatError(path, `${field} data_offsets`, `${JSON.stringify(offs)} is not [begin, end]`);
  }
  const nbytes = offs[1] - offs[0];
  const want = numel(shape) * SAFETENSORS_DTYPES[dtype].size;
  if (nbytes !== want) throw new FormatError(path, `${field} data_offsets`, `${nbytes} bytes, but ${dtype} [${shape.join(", ")}] needs ${want}`);
  const offset = dataStart + offs[0];
  if (offset + nbytes > size) throw new FormatError(path, `${field} data`, `bytes ${offset}..${offset + nbytes} run past the end of the file (${size} bytes; truncated?)`);
  return { name, dtype, shape, offset, nbytes };
}

export interface SafetensorsOut {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Produces the tensor's little-endian bytes; called once, in order, while writing. */
  bytes(): Uint8Array;
}

/** A tensor's place in a file being written: what the header says of it. */
export type SafetensorsLayout = Pick<SafetensorsOut, "name" | "dtype" | "shape">;

/**
 * The bytes before the data of a safetensors file holding `tensors` in order (the 8-byte length and
 * the JSON header); the data that follows is each tensor's bytes, back to back. Writers that stream
 * the data themselves (the training checkpoint's async writer) use this.
 */
export function encodeSafetensorsHeader(tensors: readonly SafetensorsLayout[], metadata: Record<string, string> = { format: "pt" }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const t of tensors) {
    const nbytes = numel(t.shape) * SAFETENSORS_DTYPES[t.dtype].size;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + nbytes] };
    at += nbytes;
  }
  // NOTE: pad the header with spaces to a multiple of 8 so the data is aligned for zero-copy readers.
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  return out;
}

/** Streams tensors to a safetensors file (written to path.tmp, renamed when complete). */
export function writeSafetensors(path: string, tensors: readonly SafetensorsOut[], metadata: Record<string, string> = { format: "pt" }): void {
  const head = encodeSafetensorsHeader(tensors, metadata);
  writeFileAtomically(path, (put) => {
    put(head);
    for (const t of tensors) {
      const b = t.bytes();
      const want = numel(t.shape) * SAFETENSORS_DTYPES[t.dtype].size;
      if (b.length !== want) throw new Error(`safetensors writer: tensor '${t.name}' produced ${b.length} bytes, expected ${want}`);
      put(b);
    }
  });
}
