// train_data_prepare.test.ts: `data prepare` as a library call (src/train/data/prepare.ts). The shards
// are the same bytes with 1 and 3 worker threads; their tokens are the whole corpus encoded in one
// piece (so cutting documents into worker tasks changes nothing) followed by the end-of-text id; the
// index describes every shard truthfully; and bad corpora (empty, invalid UTF-8, JSONL without the
// field) and shards that do not match their index are refused with the file and the place.

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createTokenizer, parseLlama2cTokenizer, tokenizerToHfJson, trainBpe } from "../../src/models/tokenizers/index.js";
import { firstInvalidUtf8 } from "../../src/train/data/utf8.js";
import { makeTasks } from "../../src/train/data/chunk.js";
import { openShards, prepareShards, type ShardIndex } from "../../src/train/data/index.js";
import { repoFile } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-prepare-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOK512 = repoFile("models/stories260K/tok512.bin");
const STORIES = readFileSync(repoFile("data/tinystories-sample/tiny_stories.txt"), "utf8").slice(0, 150_000);
const corpus = join(dir, "stories.txt");
writeFileSync(corpus, STORIES);
const spec = trainBpe([STORIES.slice(0, 60_000)], { vocabSize: 700 }).spec;
const tokPath = join(dir, "tokenizer.json");
writeFileSync(tokPath, JSON.stringify(tokenizerToHfJson(createTokenizer(spec))));

function tokensOf(path: string, dtype: ShardIndex["dtype"]): number[] {
  const b = readFileSync(path);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += dtype === "uint16" ? 2 : 4) out.push(dtype === "uint16" ? b.readUInt16LE(i) : b.readUInt32LE(i));
  return out;
}

function files(d: string): Record<string, string> {
  return Object.fromEntries(readdirSync(d).sort().map((f) => [f, createHash("sha256").update(readFileSync(join(d, f))).digest("hex")]));
}

describe("data prepare", () => {
  it("writes the same bytes with 1 and 3 workers, and the tokens are the corpus encoded whole plus <|endoftext|>", async () => {
    // Several tasks per document, so the workers really split the text.
    expect(makeTasks([STORIES], true).length).toBeGreaterThanOrEqual(3);
    const one = join(dir, "w1");
    const three = join(dir, "w3");
    const index = await prepareShards({ inputs: [corpus], tokenizer: tokPath, outDir: one, shardTokens: 20_000, valFraction: 0.1, workers: 1 });
    await prepareShards({ inputs: [corpus], tokenizer: tokPath, outDir: three, shardTokens: 20_000, valFraction: 0.1, workers: 3 });
    expect(files(three)).toEqual(files(one));

    const whole = [...createTokenizer(spec).encode(STORIES), 0];
    const stream = [...index.splits.train.shards, ...index.splits.val.shards].flatMap((s) => tokensOf(join(one, s.file), index.dtype));
    expect(stream).toEqual(whole);
    expect(index.dtype).toBe("uint16");
    expect(index.vocabSize).toBe(700);
    expect(index.eotId).toBe(0);
    expect(index.splits.train.tokens).toBe(Math.floor(whole.length * 0.9));
    expect(index.splits.train.tokens + index.splits.val.tokens).toBe(whole.length);
    expect(index.tokenizer.sha256).toBe(createHash("sha256").update(readFileSync(tokPath)).digest("hex"));
    for (const s of [...index.splits.train.shards, ...index.splits.val.shards]) {
      const bytes = readFileSync(join(one, s.file));
      expect(s.bytes).toBe(bytes.length);
      expect(s.tokens).toBe(bytes.length / 2);
      expect(s.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect(s.tokens).toBeLessThanOrEqual(20_000);
    }
  });

  it("tokenizes characters (nanoGPT's shakespeare_char), and JSONL documents with BPE and llama2.c vocabularies, each followed by the end-of-text id", async () => {
    const text = readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8").slice(0, 5000);
    const txt = join(dir, "shakespeare.txt");
    writeFileSync(txt, text);
    const out = join(dir, "char");
    const index = await prepareShards({ inputs: [txt], tokenizer: "char", outDir: out, valFraction: 0.1, workers: 2 });
    const chars = [...new Set(text)].sort();
    expect(index.tokenizer.chars).toEqual(chars);
    expect(index.eotId).toBeNull();
    const train = tokensOf(join(out, index.splits.train.shards[0]!.file), index.dtype);
    expect(train.map((i) => chars[i]).join("")).toBe(text.slice(0, 4500));

    const jsonl = join(dir, "docs.jsonl");
    writeFileSync(jsonl, ['{"story": "Hi there."}', "", '{"story": "Bye."}'].join("\n"));
    const idx = await prepareShards({ inputs: [jsonl], tokenizer: tokPath, outDir: join(dir, "jsonl"), valFraction: 0, workers: 1, jsonlField: "story" });
    const tok = createTokenizer(spec);
    expect(tokensOf(join(dir, "jsonl", idx.splits.train.shards[0]!.file), idx.dtype)).toEqual([...tok.encode("Hi there."), 0, ...tok.encode("Bye."), 0]);
    expect(idx.splits.val.shards).toEqual([]);

    // A llama2.c vocabulary (SentencePiece): each document is encoded in one piece, then </s>.
    const llama = createTokenizer(parseLlama2cTokenizer(readFileSync(TOK512), TOK512));
    const idx2 = await prepareShards({ inputs: [jsonl], tokenizer: TOK512, outDir: join(dir, "tok512"), valFraction: 0, workers: 2, jsonlField: "story" });
    expect(idx2.vocabSize).toBe(512);
    expect(idx2.tokenizer.kind).toBe("llama2c");
    const enc = (t: string) => llama.encode(t, { addBos: false });
    expect(tokensOf(join(dir, "tok512", idx2.splits.train.shards[0]!.file), idx2.dtype)).toEqual([...enc("Hi there."), 2, ...enc("Bye."), 2]);
  });

  it("refuses an empty corpus, invalid UTF-8 (with the byte offset) and a JSONL line without the field (with the line)", async () => {
    const run = (input: string, extra: object = {}) => prepareShards({ inputs: [input], tokenizer: tokPath, outDir: join(dir, "bad"), workers: 1, ...extra });
    const empty = join(dir, "empty.txt");
    writeFileSync(empty, "");
    await expect(run(empty)).rejects.toThrow(`${empty}: the file has no text`);

    const latin1 = join(dir, "latin1.txt");
    writeFileSync(latin1, Buffer.concat([Buffer.from("Once upon a time, caf"), Buffer.from([0xe9]), Buffer.from(" au lait")]));
    await expect(run(latin1)).rejects.toThrow(`${latin1}: not valid UTF-8 at byte offset 21`);

    const jsonl = join(dir, "missing.jsonl");
    writeFileSync(jsonl, '{"text": "a"}\n{"body": "b"}\n');
    await expect(run(jsonl)).rejects.toThrow(`${jsonl}:2: the record has no field "text"`);
    writeFileSync(jsonl, '{"text": "a"}\n{"text": 3}\nnot json\n');
    await expect(run(jsonl)).rejects.toThrow(`${jsonl}:2: field "text" is a number`);
    await expect(run(join(dir, "nope.txt"))).rejects.toThrow(/nope\.txt: cannot read the corpus file/);
    await expect(run(corpus, { valFraction: 1 })).rejects.toThrow(/val fraction/);
  });

  it("finds the first invalid UTF-8 sequence: overlong, surrogate, truncated and stray continuation bytes", () => {
    const at = (...b: number[]) => firstInvalidUtf8(Uint8Array.from(b));
    expect(at(0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x99, 0x82)).toBe(-1);
    expect(at(0x61, 0xc0, 0xaf)).toBe(1); // overlong "/"
    expect(at(0x61, 0x62, 0xed, 0xa0, 0x80)).toBe(2); // a UTF-16 surrogate
    expect(at(0x61, 0xe2, 0x82)).toBe(1); // cut off at the end
    expect(at(0x80)).toBe(0);
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // above U+10FFFF
  });

  it("on load, a shard whose size or sha256 does not match the index is an error naming the shard", async () => {
    const out = join(dir, "tamper");
    const index = await prepareShards({ inputs: [corpus], tokenizer: tokPath, outDir: out, shardTokens: 15_000, workers: 1 });
    const victim = join(out, index.splits.train.shards[1]!.file);
    const original = readFileSync(victim);
    const flipped = Buffer.from(original);
    flipped[100] = flipped[100]! ^ 1;
    writeFileSync(victim, flipped);
    const set = await openShards(out);
    await expect(set.readTokens("train", 15_010, 5)).rejects.toThrow(/train_00001\.bin: its sha256 is .* do not belong together/);
    // The first shard is intact and still reads.
    expect((await set.readTokens("train", 0, 3)).length).toBe(3);
    await set.close();

    writeFileSync(victim, original.subarray(0, original.length - 2));
    const set2 = await openShards(out, { verifySha256: false });
    await expect(set2.readTokens("train", 15_010, 5)).rejects.toThrow(/the file has 29998 bytes, but index.json lists train_00001\.bin with 30000 bytes/);
    await set2.close();

    const idx = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
    idx.splits.train.shards[0].bytes += 2;
    writeFileSync(join(out, "index.json"), JSON.stringify(idx));
    await expect(openShards(out)).rejects.toThrow(/train shard train_00000\.bin: 30002 bytes is not 15000 tokens x 2 bytes/);
  });
});
