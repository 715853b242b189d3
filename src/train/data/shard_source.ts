// shard_source.ts: where token shards are read from, a local folder or an HTTP(S) server, behind one
// interface: read `count` tokens of a split from `start`, across shard boundaries. Local shards are
// read with positional reads; remote ones with range requests (Range: bytes=a-b, answered 206). Each
// shard is checked against index.json before its tokens are used: its size always (the file's, or
// Content-Range's total), its sha256 where the whole shard is read anyway (local files, hashed once;
// a server that ignores Range and sends the whole file, which is then kept in memory and sliced).
// It does not choose which tokens to read (loader.ts, sampler.ts).

import { createReadStream, statSync } from "node:fs";
import { open, readFile, type FileHandle } from "node:fs/promises";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { INDEX_FILE, bytesPerToken, checkShardIndex, type ShardEntry, type ShardIndex, type SplitName } from "./shard_index.js";
import { sha256Hex } from "./token_codec.js";

/** Reads byte ranges of shard files named in the index. */
interface ByteReader {
  read(shard: ShardEntry, offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface ShardSet {
  readonly index: ShardIndex;
  /** Where the index came from (a path or URL), for messages. */
  readonly location: string;
  /** sha256 over the index's splits: names the data a loader position belongs to. */
  readonly fingerprint: string;
  /** Tokens [start, start + count) of the split, as ids. */
  readTokens(split: SplitName, start: number, count: number): Promise<Uint32Array>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Hash each local shard once and compare with index.json (default true). */
  readonly verifySha256?: boolean;
}

function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** `location`: a folder with index.json, an index.json path, or an http(s) URL of either. */
export async function openShards(location: string, options: OpenOptions = {}): Promise<ShardSet> {
  if (isUrl(location)) {
    const indexUrl = new URL(location.endsWith(".json") ? location : location.replace(/\/?$/, "/") + INDEX_FILE);
    const res = await fetchOrFail(indexUrl.href, {});
    if (res.status !== 200) throw new Error(`${indexUrl.href}: HTTP ${res.status} fetching the shard index`);
    const index = checkShardIndex(await parseJson(await res.text(), indexUrl.href), indexUrl.href);
    return shardSet(index, indexUrl.href, new HttpReader(indexUrl));
  }
  let path = location;
  try {
    if (statSync(location).isDirectory()) path = join(location, INDEX_FILE);
  } catch {
    throw new Error(`${location}: no such shard folder or index (run kiln data prepare first)`);
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read the shard index (${(err as Error).message})`);
  }
  const index = checkShardIndex(await parseJson(text, path), path);
  return shardSet(index, path, new LocalReader(dirname(path), options.verifySha256 ?? true));
}

async function parseJson(text: string, source: string): Promise<unknown> {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
}

function shardSet(index: ShardIndex, location: string, reader: ByteReader): ShardSet {
  const width = bytesPerToken(index.dtype);
  const starts = {
    train: cumulative(index.splits.train.shards),
    val: cumulative(index.splits.val.shards),
  };
  return {
    index,
    location,
    fingerprint: sha256Hex(JSON.stringify(index.splits)),
    async readTokens(split, start, count) {
      const total = index.splits[split].tokens;
      if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > total) {
        throw new Error(`${location}: tokens [${start}, ${start + count}) are outside the ${split} split's ${total} tokens`);
      }
      const shards = index.splits[split].shards;
      const out = new Uint32Array(count);
      const reads: Promise<void>[] = [];
      let k = upperBound(starts[split], start) - 1;
      for (let at = start; at < start + count; k++) {
        const shard = shards[k]!;
        const from = at - starts[split][k]!;
        const n = Math.min(shard.tokens - from, start + count - at);
        const dst = at - start;
        reads.push(reader.read(shard, from * width, n * width).then((bytes) => decodeInto(bytes, width, out, dst)));
        at += n;
      }
      await Promise.all(reads);
      return out;
    },
    close: () => reader.close(),
  };
}

function cumulative(shards: readonly ShardEntry[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const s of shards) {
    out.push(at);
    at += s.tokens;
  }
  return out;
}

/** The first index whose value is > x (values ascending). */
function upperBound(values: readonly number[], x: number): number {
  let lo = 0, hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function decodeInto(bytes: Uint8Array, width: number, out: Uint32Array, at: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length / width;
  if (width === 2) for (let i = 0; i < n; i++) out[at + i] = view.getUint16(2 * i, true);
  else for (let i = 0; i < n; i++) out[at + i] = view.getUint32(4 * i, true);
}

function mismatch(where: string, shard: ShardEntry, what: string): Error {
  return new Error(`${where}: ${what}, but index.json lists ${shard.file} with ${shard.bytes} bytes and sha256 ${shard.sha256.slice(0, 12)}...: the shard and the index do not belong together (re-run kiln data prepare)`);
}

class LocalReader implements ByteReader {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(
    private readonly dir: string,
    private readonly verify: boolean,
  ) {}

  async read(shard: ShardEntry, offset: number, length: number): Promise<Uint8Array> {
    let handle = this.handles.get(shard.file);
    if (handle === undefined) {
      handle = this.openChecked(shard);
      this.handles.set(shard.file, handle);
    }
    const out = new Uint8Array(length);
    const { bytesRead } = await (await handle).read(out, 0, length, offset);
    if (bytesRead !== length) throw new Error(`${join(this.dir, shard.file)}: read ${bytesRead} of ${length} bytes at offset ${offset} (was the file changed?)`);
    return out;
  }

  private async openChecked(shard: ShardEntry): Promise<FileHandle> {
    const path = join(this.dir, shard.file);
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (err) {
      throw new Error(`${path}: shard listed in index.json cannot be opened (${(err as Error).message})`);
    }
    const size = (await fh.stat()).size;
    if (size !== shard.bytes) throw mismatch(path, shard, `the file has ${size} bytes`);
    if (this.verify) {
      const sha = await hashFile(path);
      if (sha !== shard.sha256) throw mismatch(path, shard, `its sha256 is ${sha.slice(0, 12)}...`);
    }
    return fh;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map((h) => h.then((fh) => fh.close(), () => undefined)));
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

async function fetchOrFail(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new Error(`${url}: request failed (${cause?.message ?? (err as Error).message})`);
  }
}

class HttpReader implements ByteReader {
  /** Whole shards, kept when the server answers range requests with the full file. */
  private readonly whole = new Map<string, Promise<Uint8Array>>();
  /** Set once the server has answered a range request with 200: later shards are fetched whole. */
  private ignoresRange = false;

  constructor(private readonly indexUrl: URL) {}

  async read(shard: ShardEntry, offset: number, length: number): Promise<Uint8Array> {
    const url = new URL(shard.file, this.indexUrl).href;
    let whole = this.whole.get(shard.file);
    if (whole === undefined && this.ignoresRange) whole = this.fetchWhole(shard, url, fetchOrFail(url, {}));
    if (whole !== undefined) return (await whole).slice(offset, offset + length);
    if (length === 0) return new Uint8Array(0);
    const res = await fetchOrFail(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (range === null) throw new Error(`${url}: a 206 answer without a valid Content-Range header`);
      if (range[3] !== "*" && Number(range[3]) !== shard.bytes) throw mismatch(url, shard, `the server says the file has ${range[3]} bytes`);
      if (Number(range[1]) !== offset || Number(range[2]) !== offset + length - 1) throw new Error(`${url}: asked for bytes ${offset}-${offset + length - 1}, got ${range[1]}-${range[2]}`);
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length !== length) throw new Error(`${url}: the range answer has ${body.length} bytes, expected ${length}`);
      return body;
    }
    if (res.status === 200) {
      // NOTE: the server ignores Range and sends the whole file: check it against the index in full and
      // keep it, so later reads of this shard are slices instead of more full downloads.
      this.ignoresRange = true;
      const known = this.whole.get(shard.file);
      if (known !== undefined) await res.body?.cancel();
      return (await (known ?? this.fetchWhole(shard, url, Promise.resolve(res)))).slice(offset, offset + length);
    }
    await res.body?.cancel();
    throw new Error(`${url}: HTTP ${res.status} for bytes ${offset}-${offset + length - 1} of shard ${shard.file}`);
  }

  /** Caches the shard's bytes (set before any await, so concurrent reads share one download). */
  private fetchWhole(shard: ShardEntry, url: string, response: Promise<Response>): Promise<Uint8Array> {
    const whole = (async () => {
      const res = await response;
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`${url}: HTTP ${res.status} fetching shard ${shard.file}`);
      }
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length !== shard.bytes) throw mismatch(url, shard, `the server sent ${body.length} bytes`);
      const sha = sha256Hex(body);
      if (sha !== shard.sha256) throw mismatch(url, shard, `its sha256 is ${sha.slice(0, 12)}...`);
      return body;
    })();
    this.whole.set(shard.file, whole);
    whole.catch(() => this.whole.delete(shard.file));
    return whole;
  }

  async close(): Promise<void> {
    this.whole.clear();
  }
}
