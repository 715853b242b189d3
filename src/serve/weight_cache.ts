// weight_cache.ts: an LRU cache of opened models (weights read into host memory, tokenizer, chat
// template), bounded by bytes, so that loading a model again after it was unloaded skips reading,
// dequantizing and re-laying out its file. A file is known by its resolved path, size and mtime, so
// a file rewritten in place is read again. It owns the cache and its byte count; opening a model is
// the injected `open` (models/open_model.ts's openModel), building it on a backend model_registry.ts's.
// NOTE: host arrays can be shared by every model built from them: tensor() copies into the backend's
// own buffer (cpu and webgpu alike), so nothing ever writes into a cached array.

import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { nextTurn } from "../core/host.js";
import type { OpenedModel } from "../models/open_files.js";
import type { HostTensor, TensorEntry } from "../models/types.js";

export interface WeightCacheOptions {
  /** Most bytes of host tensors kept; a model larger than this is never kept. */
  readonly maxBytes: number;
  /** Opens a model file, folder or built-in name (openModel). */
  readonly open: (pathOrName: string) => OpenedModel;
}

export interface CachedOpen {
  readonly opened: OpenedModel;
  /** True when it came from the cache. */
  readonly hit: boolean;
  /** Bytes of its host tensors. */
  readonly bytes: number;
}

export interface WeightCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
}

interface Kept {
  readonly opened: OpenedModel;
  readonly bytes: number;
}

/** The key of a model path: built-in names as they are, files by resolved path, size and mtime. */
function keyOf(pathOrName: string): string {
  if (!existsSync(pathOrName)) return `name:${pathOrName}`;
  const st = statSync(pathOrName);
  return `file:${resolve(pathOrName)}:${st.size}:${st.mtimeMs}`;
}

/**
 * `opened` with every tensor read once into host memory, and those bytes. NOTE: it yields to the event
 * loop between tensors, so a server loading a model hot keeps streaming to its clients meanwhile.
 */
async function materialize(opened: OpenedModel): Promise<Kept> {
  const tensors = new Map<string, TensorEntry>();
  let bytes = 0;
  for (const [name, e] of opened.loaded.tensors) {
    await new Promise<void>((resolve) => nextTurn(resolve));
    const host: HostTensor = e.read();
    bytes += host.data.byteLength;
    tensors.set(name, { shape: e.shape, stored: e.stored, read: () => host });
  }
  return { opened: { ...opened, loaded: { ...opened.loaded, tensors } }, bytes };
}

export class WeightCache {
  readonly maxBytes: number;
  /** In use order: the first key is the least recently used. */
  private readonly kept = new Map<string, Kept>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private readonly open: (pathOrName: string) => OpenedModel;

  constructor(opts: WeightCacheOptions) {
    if (!(Number.isSafeInteger(opts.maxBytes) && opts.maxBytes >= 0)) throw new Error(`WeightCache: maxBytes must be an integer >= 0, got ${opts.maxBytes}`);
    this.maxBytes = opts.maxBytes;
    this.open = opts.open;
  }

  /** The opened model at `pathOrName`, from the cache when it holds it; kept (evicting LRU) when it fits. */
  async get(pathOrName: string): Promise<CachedOpen> {
    const key = keyOf(pathOrName);
    const found = this.kept.get(key);
    if (found) {
      this.hits++;
      this.kept.delete(key);
      this.kept.set(key, found);
      return { ...found, hit: true };
    }
    this.misses++;
    const made = await materialize(this.open(pathOrName));
    if (made.bytes <= this.maxBytes) {
      for (const [k, v] of this.kept) {
        if (this.bytes + made.bytes <= this.maxBytes) break;
        this.kept.delete(k);
        this.bytes -= v.bytes;
      }
      this.kept.set(key, made);
      this.bytes += made.bytes;
    }
    return { ...made, hit: false };
  }

  /** Forget everything (e.g. to measure a cold load). */
  clear(): void {
    this.kept.clear();
    this.bytes = 0;
  }

  stats(): WeightCacheStats {
    return { entries: this.kept.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses };
  }
}
