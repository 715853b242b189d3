// file_source.ts: positioned reads from a model's bytes: a file on disk (Node: openSync + readSync at
// an offset) or bytes already in memory (a browser's File, a fetched model), behind one ByteSource
// interface; and a buffered little-endian cursor for parsing headers. It owns the "file too short"
// error, which names the file, the field being read and the offsets; it does not know any format's layout.
// NOTE: nothing here reads a whole file: tensors are read one at a time at their offsets, so a model
// larger than RAM can still be converted. No Node built-in is imported statically (host.ts), so the
// readers also load in a browser, where models arrive as bytes.

import { requireNodeBuiltin } from "../../core/host.js";

/** A model-format problem: names the file and the field that is wrong. */
export class FormatError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field}: ${detail}`);
    this.name = "FormatError";
  }
}

/** Byte ranges of one model file, read on demand. `path` names it in errors (a path, or a file name). */
export interface ByteSource {
  readonly path: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or a FormatError naming `field` when the source is shorter. */
  read(offset: number, length: number, field: string): Uint8Array<ArrayBuffer>;
  close(): void;
}

/**
 * Where a reader finds a file: a path (opened for each use and closed after; Node only) or an open
 * ByteSource (used as is, never closed by the reader: its owner closes it).
 */
export type SourceRef = string | ByteSource;

export const sourceName = (ref: SourceRef): string => (typeof ref === "string" ? ref : ref.path);

/** Runs `use` on the source `ref` names, closing it afterwards when it was opened here. */
export function withSource<T>(ref: SourceRef, use: (src: ByteSource) => T): T {
  if (typeof ref !== "string") return use(ref);
  const src = new FileSource(ref);
  try {
    return use(src);
  } finally {
    src.close();
  }
}

function tooShort(src: ByteSource, offset: number, length: number, field: string): FormatError {
  return new FormatError(src.path, field, `needs bytes ${offset}..${offset + length} but the file has ${src.size} (truncated?)`);
}

/** An open file (Node). Close it when the model is no longer needed. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | undefined;
  private readonly fs = requireNodeBuiltin("node:fs", "reading a model file by path");

  constructor(readonly path: string) {
    this.fd = this.fs.openSync(path, "r");
    this.size = this.fs.fstatSync(this.fd).size;
  }

  read(offset: number, length: number, field: string): Uint8Array<ArrayBuffer> {
    if (offset + length > this.size) throw tooShort(this, offset, length, field);
    if (this.fd === undefined) throw new FormatError(this.path, field, "the file was closed");
    const out = new Uint8Array(length);
    let done = 0;
    // NOTE: readSync may return fewer bytes than asked (and caps one call at 2 GiB): loop.
    while (done < length) {
      const n = this.fs.readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) throw new FormatError(this.path, field, `unexpected end of file at byte ${offset + done}`);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) this.fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A file's bytes already in memory (a browser's File read into an ArrayBuffer, a fetched model). */
export class MemorySource implements ByteSource {
  readonly size: number;

  constructor(
    readonly path: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.byteLength;
  }

  read(offset: number, length: number, field: string): Uint8Array<ArrayBuffer> {
    if (offset + length > this.size) throw tooShort(this, offset, length, field);
    // NOTE: a copy, 4-aligned in its own buffer, as FileSource's reads are (dequantize views f32 data in place).
    return this.bytes.slice(offset, offset + length) as Uint8Array<ArrayBuffer>;
  }

  close(): void {}
}

const CHUNK = 1 << 20;

/** Sequential little-endian reads through a ByteSource, buffered in 1 MiB chunks. */
export class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;
  private decoder = new TextDecoder("utf-8", { fatal: false });

  constructor(
    readonly src: ByteSource,
    public pos = 0,
  ) {}

  /** Makes bytes [pos, pos+n) available in the buffer; returns their index in it. */
  private need(n: number, field: string): number {
    const at = this.pos - this.bufStart;
    if (at >= 0 && at + n <= this.buf.length) return at;
    const len = Math.min(Math.max(n, CHUNK), this.src.size - this.pos);
    if (len < n) {
      throw new FormatError(this.src.path, field, `needs ${n} bytes at offset ${this.pos} but the file has ${this.src.size} (truncated?)`);
    }
    this.buf = this.src.read(this.pos, len, field);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  bytes(n: number, field: string): Uint8Array<ArrayBuffer> {
    const at = this.need(n, field);
    this.pos += n;
    return this.buf.slice(at, at + n);
  }

  u8(field: string): number {
    const at = this.need(1, field);
    this.pos += 1;
    return this.view.getUint8(at);
  }
  i8(field: string): number {
    const at = this.need(1, field);
    this.pos += 1;
    return this.view.getInt8(at);
  }
  u16(field: string): number {
    const at = this.need(2, field);
    this.pos += 2;
    return this.view.getUint16(at, true);
  }
  i16(field: string): number {
    const at = this.need(2, field);
    this.pos += 2;
    return this.view.getInt16(at, true);
  }
  u32(field: string): number {
    const at = this.need(4, field);
    this.pos += 4;
    return this.view.getUint32(at, true);
  }
  i32(field: string): number {
    const at = this.need(4, field);
    this.pos += 4;
    return this.view.getInt32(at, true);
  }
  f32(field: string): number {
    const at = this.need(4, field);
    this.pos += 4;
    return this.view.getFloat32(at, true);
  }
  f64(field: string): number {
    const at = this.need(8, field);
    this.pos += 8;
    return this.view.getFloat64(at, true);
  }
  u64(field: string): bigint {
    const at = this.need(8, field);
    this.pos += 8;
    return this.view.getBigUint64(at, true);
  }
  i64(field: string): bigint {
    const at = this.need(8, field);
    this.pos += 8;
    return this.view.getBigInt64(at, true);
  }

  /** A u64 that must fit a JS number (a count, a length or an offset). */
  size64(field: string): number {
    const v = this.u64(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(this.src.path, field, `value ${v} is too large (corrupt file?)`);
    return Number(v);
  }

  /** UTF-8 text of n bytes; n is checked against the bytes left so a corrupt length fails cleanly. */
  text(n: number, field: string): string {
    if (this.pos + n > this.src.size) {
      throw new FormatError(this.src.path, field, `string of ${n} bytes at offset ${this.pos} runs past the end of the file (${this.src.size} bytes)`);
    }
    const at = this.need(n, field);
    this.pos += n;
    return this.decoder.decode(this.buf.subarray(at, at + n));
  }
}

/**
 * Write a file through `write(put)`, where put appends bytes. The file appears only when complete:
 * it is written to path.tmp and renamed; on an error the partial file is removed.
 */
export function writeFileAtomically(path: string, write: (put: (b: Uint8Array) => void) => void): void {
  const { openSync, writeSync, closeSync, rmSync, renameSync } = requireNodeBuiltin("node:fs", "writing a model file");
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  const put = (b: Uint8Array) => {
    for (let at = 0; at < b.length; ) at += writeSync(fd, b, at, b.length - at);
  };
  try {
    write(put);
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, path);
}
