// train_data_http.test.ts: the data loader streaming shards over HTTP from a local node server on
// 127.0.0.1. With range requests (206) it hands out the same batches as from the folder, reading only the
// windows; a server that ignores Range (200, whole file) still gives the same batches, each shard
// downloaded once and checked against index.json's sha256; a tampered shard or a missing one is an error.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLoader, type LoaderOptions } from "../../src/train/data/index.js";
import { writeIdentityShards } from "./train_data_helpers.js";

const root = mkdtempSync(join(tmpdir(), "kiln-http-"));
const DIR = writeIdentityShards(root, "ident", 12_000, 1000);

interface Seen { file: string; range: string | undefined; status: number }
const seen: Seen[] = [];
let honorRange = true;
let server: Server;
let base = "";

function serve(req: IncomingMessage, res: ServerResponse): void {
  const file = (req.url ?? "/").slice(1);
  const path = join(DIR, file);
  const range = req.headers.range;
  const reply = (status: number, body: Uint8Array | string, headers: Record<string, string> = {}) => {
    seen.push({ file, range, status });
    res.writeHead(status, headers).end(body);
  };
  if (!/^[\w.]+$/.test(file) || !existsSync(path)) return reply(404, "not found");
  const bytes = readFileSync(path);
  const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? "");
  if (!honorRange || m === null) return reply(200, bytes);
  const [a, b] = [Number(m[1]), Math.min(Number(m[2]), bytes.length - 1)];
  reply(206, bytes.subarray(a, b + 1), { "content-range": `bytes ${a}-${b}/${bytes.length}` });
}

beforeAll(async () => {
  server = createServer(serve);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(root, { recursive: true, force: true });
});

async function batches(source: string, o: Omit<LoaderOptions, "source">, steps: number): Promise<number[][]> {
  const loader = await createLoader({ source, ...o });
  const out: number[][] = [];
  for (let i = 0; i < steps; i++) out.push([...(await loader.next()).x]);
  await loader.close();
  return out;
}

const opts = { batchSize: 4, blockSize: 32, seed: 5 };

describe("data loader over HTTP", () => {
  it("reads windows with range requests and gives the same batches as the local folder", async () => {
    seen.length = 0;
    honorRange = true;
    const remote = await batches(base, opts, 6);
    expect(remote).toEqual(await batches(DIR, opts, 6));
    const shardReads = seen.filter((s) => s.file.endsWith(".bin"));
    expect(shardReads.length).toBeGreaterThanOrEqual(24); // one or two per row
    for (const s of shardReads) {
      expect(s.status).toBe(206);
      const [a, b] = s.range!.replace("bytes=", "").split("-").map(Number) as [number, number];
      expect(b - a + 1).toBeLessThanOrEqual(33 * 2); // a window, never a whole 2000-byte shard
    }
    expect(seen[0]).toMatchObject({ file: "index.json", status: 200 });
  });

  it("falls back to whole-file downloads when the server ignores Range, each shard fetched and verified once", async () => {
    seen.length = 0;
    honorRange = false;
    const o = { ...opts, prefetch: 0 };
    const remote = await batches(base + "index.json", o, 8);
    expect(remote).toEqual(await batches(DIR, o, 8));
    const perShard = new Map<string, number>();
    for (const s of seen.filter((x) => x.file.endsWith(".bin"))) perShard.set(s.file, (perShard.get(s.file) ?? 0) + 1);
    expect([...perShard.values()].every((n) => n === 1)).toBe(true);
    honorRange = true;
  });

  it("a shard whose bytes do not match the index, or a missing shard, ends in an error naming it", async () => {
    const victim = join(DIR, "train_3.bin");
    const original = readFileSync(victim);
    const bad = Buffer.from(original);
    bad[10] = bad[10]! ^ 0xff;
    writeFileSync(victim, bad);
    honorRange = false;
    const loader = await createLoader({ source: base, batchSize: 64, blockSize: 32, seed: 1, prefetch: 0 });
    // 64 random rows over 12 shards: some row lands in train_3.
    await expect(loader.next()).rejects.toThrow(/train_3\.bin: its sha256 is .* do not belong together/);
    await loader.close();
    writeFileSync(victim, original);

    rmSync(join(DIR, "train_7.bin"));
    honorRange = true;
    const loader2 = await createLoader({ source: base, batchSize: 64, blockSize: 32, seed: 1, prefetch: 0 });
    await expect(loader2.next()).rejects.toThrow(/train_7\.bin: HTTP 404/);
    await loader2.close();
    await expect(createLoader({ source: base + "nothing/", batchSize: 1, blockSize: 1 })).rejects.toThrow(/HTTP 404 fetching the shard index/);
  });
});
