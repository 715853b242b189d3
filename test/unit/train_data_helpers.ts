// train_data_helpers.ts: shard folders for the data loader tests, written directly (not by data
// prepare) with token i equal to i, so a batch row shows which window of the split it is.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeTokens } from "../../src/train/data/prepare.js";
import { sha256Hex } from "../../src/train/data/token_codec.js";

/** Shards of tokens 0..n-1 (train) and n..n+val-1 (val), `per` tokens per shard file. */
export function writeIdentityShards(root: string, name: string, n: number, per: number, val = 100): string {
  const dir = join(root, name);
  const split = (kind: string, from: number, to: number) => {
    const shards = [];
    for (let s = from, k = 0; s < to; s += per, k++) {
      const ids = Uint32Array.from({ length: Math.min(per, to - s) }, (_, i) => s + i);
      const bytes = encodeTokens(ids, "uint16");
      const file = `${kind}_${k}.bin`;
      writeFileSync(join(dir, file), bytes);
      shards.push({ file, tokens: ids.length, bytes: bytes.length, sha256: sha256Hex(bytes) });
    }
    return { tokens: to - from, shards };
  };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const index = {
    format: "kiln-token-shards", version: 1, dtype: "uint16", vocabSize: 65536, eotId: null,
    tokenizer: { kind: "char", name: "char", sha256: "0".repeat(64), chars: [] }, inputs: [],
    splits: { train: split("train", 0, n), val: split("val", n, n + val) },
  };
  writeFileSync(join(dir, "index.json"), JSON.stringify(index));
  return dir;
}
