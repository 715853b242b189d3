// store.ts: where offloaded activations wait for the backward, behind one interface:
//   - HostStore: host memory (on webgpu/cuda this is the whole saving: the bytes leave the device);
//   - DiskStore: one file per tensor in a folder (the NVMe case, when host memory is short);
//   - TieredStore: host up to a byte budget, then disk.
// A store only keeps bytes; offload.ts decides what goes in and when it comes back.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ActivationStore {
  /** Keep these bytes under `key` (a new key); throws a clear error when it cannot (a full disk). */
  put(key: string, bytes: Uint8Array): void;
  /** The bytes under `key`, removed from the store. */
  take(key: string): Uint8Array;
  /** Bytes held now, per tier. */
  readonly held: { readonly host: number; readonly disk: number };
  /** Drop everything (and any folder the store made). */
  close(): void;
}

export class HostStore implements ActivationStore {
  private readonly items = new Map<string, Uint8Array>();
  private bytes = 0;

  get held() { return { host: this.bytes, disk: 0 }; }

  put(key: string, bytes: Uint8Array): void {
    if (this.items.has(key)) throw new Error(`HostStore: '${key}' is already stored`);
    this.items.set(key, bytes);
    this.bytes += bytes.byteLength;
  }

  take(key: string): Uint8Array {
    const b = this.items.get(key);
    if (!b) throw new Error(`HostStore: nothing stored under '${key}'`);
    this.items.delete(key);
    this.bytes -= b.byteLength;
    return b;
  }

  close(): void {
    this.items.clear();
    this.bytes = 0;
  }
}

/** File operations the disk store uses (a test injects a failing write). */
export interface StoreFs {
  writeFileSync(path: string, data: Uint8Array): void;
  readFileSync(path: string): Uint8Array;
  unlinkSync(path: string): void;
}
const NODE_FS: StoreFs = { writeFileSync, readFileSync, unlinkSync };

export class DiskStore implements ActivationStore {
  readonly dir: string;
  private readonly files = new Map<string, { path: string; bytes: number }>();
  private bytes = 0;
  private readonly made: boolean;

  /** Files go into `dir` (made if missing), or into a fresh folder in the OS temp dir that close() removes. */
  constructor(dir?: string, private readonly fs: StoreFs = NODE_FS) {
    this.made = dir === undefined;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), "kiln-offload-"));
    if (dir !== undefined) mkdirSync(dir, { recursive: true });
  }

  get held() { return { host: 0, disk: this.bytes }; }

  put(key: string, bytes: Uint8Array): void {
    if (this.files.has(key)) throw new Error(`DiskStore: '${key}' is already stored`);
    const path = join(this.dir, `${key.replace(/[^A-Za-z0-9_.-]/g, "_")}.bin`);
    try {
      this.fs.writeFileSync(path, bytes);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      try { this.fs.unlinkSync(path); } catch { /* NOTE: a write that failed may have left nothing behind */ }
      const why = e.code === "ENOSPC" ? "the disk is full (ENOSPC)" : e.message;
      throw new Error(`activation offload: cannot write ${bytes.byteLength} bytes to ${path}: ${why}; free space in ${this.dir}, point memory.offload.dir elsewhere, or offload to host`, { cause: err });
    }
    this.files.set(key, { path, bytes: bytes.byteLength });
    this.bytes += bytes.byteLength;
  }

  take(key: string): Uint8Array {
    const f = this.files.get(key);
    if (!f) throw new Error(`DiskStore: nothing stored under '${key}'`);
    const data = this.fs.readFileSync(f.path);
    if (data.byteLength !== f.bytes) throw new Error(`activation offload: ${f.path} holds ${data.byteLength} bytes, ${f.bytes} were written`);
    this.fs.unlinkSync(f.path);
    this.files.delete(key);
    this.bytes -= f.bytes;
    return data;
  }

  close(): void {
    for (const f of this.files.values()) {
      try { this.fs.unlinkSync(f.path); } catch { /* NOTE: already gone: nothing to clean */ }
    }
    this.files.clear();
    this.bytes = 0;
    if (this.made) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Host memory up to `hostBytes`, then files. */
export class TieredStore implements ActivationStore {
  private readonly where = new Map<string, ActivationStore>();

  constructor(private readonly host: HostStore, private readonly disk: DiskStore, private readonly hostBytes: number) {}

  get held() { return { host: this.host.held.host, disk: this.disk.held.disk }; }

  put(key: string, bytes: Uint8Array): void {
    const s = this.host.held.host + bytes.byteLength <= this.hostBytes ? this.host : this.disk;
    s.put(key, bytes);
    this.where.set(key, s);
  }

  take(key: string): Uint8Array {
    const s = this.where.get(key);
    if (!s) throw new Error(`TieredStore: nothing stored under '${key}'`);
    this.where.delete(key);
    return s.take(key);
  }

  close(): void {
    this.host.close();
    this.disk.close();
    this.where.clear();
  }
}
