// train_data_cli.test.ts: `kiln tokenizer train` and `kiln data prepare` through the launcher, as a user
// runs them: a trained tokenizer.json that kiln's reader loads at the asked size, shards prepared with it,
// invalid UTF-8 refused with exit 1 and the byte offset, usage mistakes with exit 2.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tokenizerFromHfJson } from "../../src/models/tokenizers/index.js";
import { checkShardIndex } from "../../src/train/data/index.js";
import { repoFile } from "../helpers/fixtures.js";
import { kiln } from "../helpers/kiln_cli.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-data-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const corpus = join(dir, "stories.txt");
writeFileSync(corpus, readFileSync(repoFile("data/tinystories-sample/tiny_stories.txt"), "utf8").slice(0, 40_000));

describe("kiln tokenizer train / data prepare", () => {
  it("trains a tokenizer.json, then prepares shards with it", async () => {
    const tok = join(dir, "tok.json");
    const trained = await kiln("tokenizer", "train", "--input", corpus, "--vocab-size", "400", "--out", tok);
    expect(trained.stderr).toBe("");
    expect(trained.code).toBe(0);
    expect(trained.stdout).toContain("400 tokens (143 merges)");
    const tokenizer = tokenizerFromHfJson(JSON.parse(readFileSync(tok, "utf8")));
    expect(tokenizer.vocabSize).toBe(400);

    const out = join(dir, "shards");
    const prepared = await kiln("data", "prepare", "--input", corpus, "--tokenizer", tok, "--out", out, "--workers", "2", "--val-fraction", "0.2");
    expect(prepared.code).toBe(0);
    const index = checkShardIndex(JSON.parse(readFileSync(join(out, "index.json"), "utf8")), "index.json");
    const total = tokenizer.encode(readFileSync(corpus, "utf8")).length + 1;
    expect(index.splits.train.tokens + index.splits.val.tokens).toBe(total);
    expect(prepared.stdout).toContain(`${index.splits.train.tokens} train tokens in 1 shard(s), ${index.splits.val.tokens} val tokens`);
  });

  it("invalid UTF-8 exits 1 naming the file and byte offset; a usage mistake exits 2 with the command's help", async () => {
    const bad = join(dir, "bad.txt");
    writeFileSync(bad, Buffer.from([0x68, 0x69, 0x20, 0xff, 0x21]));
    const [r, u] = await Promise.all([
      kiln("tokenizer", "train", "--input", bad, "--vocab-size", "300", "--out", join(dir, "x.json")),
      kiln("data", "prepare", "--input", corpus, "--tokenizer", "char", "--out", join(dir, "o"), "--val-fraction", "1.5"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}: not valid UTF-8 at byte offset 3`);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("--val-fraction must be a number in [0, 1), got '1.5'");
    expect(u.stderr).toContain("Usage: kiln data prepare");
  });
});
