// checkpoint_fs.ts: the file operations a checkpoint write needs, asynchronous, behind one small
// interface, so the write runs while training goes on (Node's fs.promises, on libuv's thread pool) and
// so tests can inject faults (a full disk, a slow disk) without root. It owns nothing else: what is
// written where is checkpoint_writer.ts.

import { requireNodeBuiltin } from "../../core/host.js";

/** A file open for writing. */
export interface CheckpointFile {
  write(bytes: Uint8Array): Promise<void>;
  /** fsync: the bytes are on the disk when this resolves. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointFs {
  mkdir(path: string): Promise<void>;
  /** Creates (or truncates) a file for writing. */
  create(path: string): Promise<CheckpointFile>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a folder and everything in it; nothing when it does not exist. */
  remove(path: string): Promise<void>;
  /** fsync on a folder: its entries (new files, renames) are on the disk when this resolves. */
  syncDir(path: string): Promise<void>;
  /** The names in a folder ([] when it does not exist). */
  list(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

/** The real file system (Node). */
export function nodeCheckpointFs(): CheckpointFs {
  const fsp = requireNodeBuiltin("node:fs", "writing a checkpoint").promises;
  return {
    mkdir: async (path) => void (await fsp.mkdir(path, { recursive: true })),
    async create(path) {
      const fh = await fsp.open(path, "w");
      return {
        async write(bytes) {
          // NOTE: FileHandle.write may write fewer bytes than asked (large buffers): loop.
          for (let at = 0; at < bytes.length; ) at += (await fh.write(bytes, at, bytes.length - at)).bytesWritten;
        },
        sync: () => fh.sync(),
        close: () => fh.close(),
      };
    },
    rename: (from, to) => fsp.rename(from, to),
    remove: (path) => fsp.rm(path, { recursive: true, force: true }),
    async syncDir(path) {
      const fh = await fsp.open(path, "r");
      try {
        await fh.sync();
      } catch (err) {
        // NOTE: some platforms (Windows, a few network file systems) cannot fsync a folder; the rename is
        // still atomic there, only its durability across a power cut is weaker. Anything else is real.
        if (!["EISDIR", "EPERM", "EINVAL", "EBADF"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
      } finally {
        await fh.close();
      }
    },
    async list(path) {
      try {
        return await fsp.readdir(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw err;
      }
    },
    async exists(path) {
      try {
        await fsp.stat(path);
        return true;
      } catch {
        return false;
      }
    },
  };
}
