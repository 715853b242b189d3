// Regression tests for the model-file defects an outside fuzz run found: sizes from headers trusted
// before the file's length or a sane limit was checked (llama2.c n_layers 2^22, GGUF block_count 2^24,
// context lengths of 2^24 and 1e9), a KV pool sized for every seat at a file's full context, and a
// Hugging Face index whose weight_map names a file outside the model folder.

import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { openModel } from "../../src/models/open_model.js";
import { FormatError } from "../../src/models/formats/file_source.js";
import { loadGguf } from "../../src/models/formats/gguf_model.js";
import { writeGguf } from "../../src/models/formats/gguf_writer.js";
import { readHfFolder, writeHfFolder } from "../../src/models/formats/hf_folder.js";
import { readLlama2c, readLlama2cHeader } from "../../src/models/formats/llama2c.js";
import { fromLoaded } from "../../src/models/language_model.js";
import type { LoadedModel } from "../../src/models/types.js";
import { Engine } from "../../src/serve/engine.js";
import { kvBytesPerBlock, sizeKvCache } from "../../src/serve/kv_memory.js";
import { ModelRegistry } from "../../src/serve/model_registry.js";
import { WeightCache } from "../../src/serve/weight_cache.js";
import { STORIES260K_BIN, repoFile } from "../helpers/fixtures.js";
import { scratch } from "./formats_helpers.js";

const TOK512 = repoFile("models/stories260K/tok512.bin");
const MiB = 2 ** 20;

/** Runs `f`, returning what it threw (or undefined), the CPU time it took and how much memory it grew. */
function measure(f: () => unknown): { error: unknown; ms: number; grewMiB: number } {
  const before = process.memoryUsage();
  // NOTE: CPU time, not wall time: on a loaded machine the wall clock mostly measures waiting for a core.
  const t0 = process.cpuUsage();
  let error: unknown;
  try {
    f();
  } catch (err) {
    error = err;
  }
  const after = process.memoryUsage();
  const grew = Math.max(after.rss - before.rss, after.heapUsed - before.heapUsed, after.arrayBuffers - before.arrayBuffers);
  const cpu = process.cpuUsage(t0);
  return { error, ms: (cpu.user + cpu.system) / 1000, grewMiB: grew / MiB };
}

/** The error is a FormatError naming `file` and `field`, thrown quickly without allocating much. */
function expectRefused(r: ReturnType<typeof measure>, file: string, field: RegExp): void {
  expect(r.error).toBeInstanceOf(FormatError);
  const e = r.error as FormatError;
  expect(e.file).toBe(file);
  expect(e.field).toMatch(field);
  expect(e.message.startsWith(`${file}: `)).toBe(true);
  expect(r.ms).toBeLessThan(2000);
  expect(r.grewMiB).toBeLessThan(200);
}

/** stories260K.bin with header field `index` (0 dim .. 6 seq_len) set to `value`. */
function llama2cWith(path: string, index: number, value: number): void {
  const b = readFileSync(STORIES260K_BIN);
  b.writeInt32LE(value, 4 * index);
  writeFileSync(path, b);
}

/** stories260K as a LoadedModel whose config says something else (what writeGguf stores as metadata). */
function storiesWith(change: Record<string, number>): LoadedModel {
  const m = readLlama2c(STORIES260K_BIN);
  return { ...m, config: { ...m.config, ...change } as LoadedModel["config"] };
}

describe("sizes read from model headers", () => {
  it("a llama2.c n_layers of 2^22 is refused before anything is sized from it", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "layers.bin");
      llama2cWith(p, 2, 2 ** 22);
      expectRefused(measure(() => readLlama2c(p)), p, /n_layers|file length/);
    } finally {
      s.done();
    }
  });

  it("a GGUF block_count of 2^24 is a FormatError naming the key, not 'Map maximum size exceeded'", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "blocks.gguf");
      writeGguf(p, storiesWith({ nLayers: 2 ** 24 }));
      expectRefused(measure(() => loadGguf(p)), p, /llama\.block_count/);
    } finally {
      s.done();
    }
  });

  it("a context length of 1e9 is refused by name: GGUF llama.context_length and HF max_position_embeddings", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "ctx.gguf");
      writeGguf(p, storiesWith({ maxSeqLen: 1e9 }));
      expectRefused(measure(() => loadGguf(p)), p, /llama\.context_length/);

      const dir = join(s.dir, "hf");
      writeHfFolder(dir, readLlama2c(STORIES260K_BIN));
      const cfgPath = join(dir, "config.json");
      const cfg = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
      writeFileSync(cfgPath, JSON.stringify({ ...cfg, max_position_embeddings: 1e9 }));
      expectRefused(measure(() => readHfFolder(dir)), cfgPath, /^max_position_embeddings$/);
    } finally {
      s.done();
    }
  });

  it("a GGUF context length of 2^24 loads without allocating for every position (tables and cache are capped)", async () => {
    const s = scratch();
    try {
      const p = join(s.dir, "long.gguf");
      writeGguf(p, storiesWith({ maxSeqLen: 2 ** 24 }));
      const cpu = await getBackend("cpu");
      let lm: ReturnType<typeof fromLoaded> | undefined;
      const r = measure(() => (lm = fromLoaded(loadGguf(p), cpu)));
      expect(r.error).toBeUndefined();
      expect(lm!.config.maxSeqLen).toBe(2 ** 24);
      expect(lm!.contextLength).toBeLessThan(2 ** 24);
      // stories260K's RoPE tables at 2^24 positions are 2 GiB of f64 and 1 GiB of f32.
      expect(r.grewMiB).toBeLessThan(300);
      const logits = await lm!.forwardPrefill([1, 400]);
      expect(logits.length).toBe(512);
    } finally {
      s.done();
    }
  });
});

describe("the KV pool of a served model", () => {
  const shape = { layers: 5, kvHeads: 4, maxSeq: 65536, headDim: 8 }; // stories260K with a 65536-token seq_len
  const fullLength = (blockSize: number) => 64 * Math.ceil(65536 / blockSize); // 64 seats at full length: 5.4 GB

  it("on cpu it is sized from a memory budget, not from every seat at the model's full context", async () => {
    const cpu = await getBackend("cpu");
    const s = sizeKvCache({ backend: cpu, shape, dtype: "f32", blockSize: 16, weightsBytes: 1e6, useful: fullLength(16), need: 4096 });
    expect(s.numBlocks * s.bytesPerBlock).toBeLessThanOrEqual(1.1 * 2 ** 30);
    expect(s.numBlocks).toBeLessThan(fullLength(16));
    expect(s.numBlocks).toBeGreaterThanOrEqual(4096); // one request at full length still fits
    // An explicit device memory is the caller's word: the budget is then its fraction, as before.
    const big = sizeKvCache({ backend: cpu, shape, dtype: "f32", blockSize: 16, weightsBytes: 1e6, useful: fullLength(16), need: 4096, deviceMemoryBytes: 1e12 });
    expect(big.numBlocks).toBe(fullLength(16));
    // A model whose one full-length request needs more than the budget still gets that one request.
    const large = { layers: 32, kvHeads: 8, maxSeq: 16384, headDim: 128 }; // 4 MiB per block
    const one = sizeKvCache({ backend: cpu, shape: large, dtype: "f32", blockSize: 16, weightsBytes: 1e6, useful: 64 * 1024, need: 1024 });
    expect(one.numBlocks).toBe(1024);
  });

  it("loading a 3 MB llama2.c file whose seq_len is 65536 through the registry stays within the budget", async () => {
    const s = scratch();
    const engine = new Engine([], {});
    try {
      // stories260K with seq_len 65536: its freq_cis tables (skipped by readers) grow to 65536 rows.
      const h = readLlama2cHeader(STORIES260K_BIN);
      const src = readFileSync(STORIES260K_BIN);
      const headSize = h.dim / h.n_heads;
      const tables = 2 * h.seq_len * (headSize / 2) * 4;
      const end = src.length - tables; // shared classifier: the tables end the file
      const p = join(s.dir, "long.bin");
      const out = Buffer.concat([src.subarray(0, end), Buffer.alloc(2 * 65536 * (headSize / 2) * 4)]);
      out.writeInt32LE(65536, 24);
      writeFileSync(p, out);
      copyFileSync(TOK512, join(s.dir, "tok512.bin"));
      expect(readLlama2cHeader(p).seq_len).toBe(65536);

      await engine.ready();
      const weights = new WeightCache({ maxBytes: 64 * MiB, open: (path) => openModel(path) });
      const registry = new ModelRegistry({ engine, backend: await getBackend("cpu"), weights });
      const rss = process.memoryUsage().rss;
      const v = await registry.load({ name: "long", version: "1", path: p });
      const bytes = v.kvBlocks! * kvBytesPerBlock(shape, 16, "f32");
      expect(bytes).toBeLessThanOrEqual(1.1 * 2 ** 30);
      expect(process.memoryUsage().rss - rss).toBeLessThan(1.5 * 2 ** 30);
    } finally {
      await engine.close();
      s.done();
    }
  });
});

describe("Hugging Face shard paths", () => {
  function folderWithIndex(dir: string, entry: string): string {
    writeHfFolder(dir, readLlama2c(STORIES260K_BIN));
    const index = join(dir, "model.safetensors.index.json");
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { "model.embed_tokens.weight": "model.safetensors", "model.norm.weight": entry } }));
    return index;
  }

  it.each([
    ["../../etc/hostname", /leaves the model folder/],
    ["/etc/hostname", /leaves the model folder/],
  ])("refuses weight_map entry %s, naming it", (entry, why) => {
    const s = scratch();
    try {
      const index = folderWithIndex(join(s.dir, "m"), entry);
      const r = measure(() => readHfFolder(join(s.dir, "m")));
      expectRefused(r, index, /weight_map\['model\.norm\.weight'\]/);
      expect((r.error as Error).message).toMatch(why);
    } finally {
      s.done();
    }
  });

  it("refuses a shard that is a symlink out of the folder", () => {
    const s = scratch();
    try {
      mkdirSync(join(s.dir, "outside"));
      writeHfFolder(join(s.dir, "outside"), readLlama2c(STORIES260K_BIN));
      const index = folderWithIndex(join(s.dir, "m"), "shard.safetensors");
      symlinkSync(join(s.dir, "outside", "model.safetensors"), join(s.dir, "m", "shard.safetensors"));
      const r = measure(() => readHfFolder(join(s.dir, "m")));
      expectRefused(r, index, /weight_map\['model\.norm\.weight'\]/);
      expect((r.error as Error).message).toMatch(/outside the model folder/);
    } finally {
      s.done();
    }
  });

  it("still reads shards the index names inside the folder", () => {
    const s = scratch();
    try {
      folderWithIndex(join(s.dir, "m"), "model.safetensors");
      expect(readHfFolder(join(s.dir, "m")).tensors.size).toBeGreaterThan(0);
    } finally {
      s.done();
    }
  });
});
