// shard_index.ts: the index.json that describes a folder of token shards: its format version, the
// token dtype (uint16 below 65536 tokens, else uint32, little-endian), the vocabulary size, the
// tokenizer's identity (kind, name, sha256; the characters for "char"), the inputs, and per split
// (train, val) the shard files with token count, byte length and sha256. It owns the schema and the
// checks of a parsed index; prepare.ts writes one, shard_source.ts and loader.ts read one.

import { z } from "zod";

export const INDEX_FORMAT = "kiln-token-shards";
export const INDEX_VERSION = 1;
export const INDEX_FILE = "index.json";

const sha = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 in lowercase hex");
const count = z.number().int().nonnegative();

const shardSchema = z.object({ file: z.string().regex(/^[A-Za-z0-9_.-]+$/, "a plain file name"), tokens: count, bytes: count, sha256: sha });
const splitSchema = z.object({ tokens: count, shards: z.array(shardSchema) });

const indexSchema = z.object({
  format: z.literal(INDEX_FORMAT),
  version: z.literal(INDEX_VERSION),
  dtype: z.enum(["uint16", "uint32"]),
  vocabSize: z.number().int().positive(),
  eotId: z.number().int().nonnegative().nullable(),
  tokenizer: z.object({ kind: z.enum(["hf-json", "llama2c", "char"]), name: z.string(), sha256: sha, chars: z.array(z.string()).optional() }),
  inputs: z.array(z.object({ name: z.string(), bytes: count, sha256: sha })),
  splits: z.object({ train: splitSchema, val: splitSchema }),
});

export type ShardIndex = z.infer<typeof indexSchema>;
export type ShardEntry = z.infer<typeof shardSchema>;
export type SplitName = keyof ShardIndex["splits"];

export function dtypeFor(vocabSize: number): ShardIndex["dtype"] {
  return vocabSize <= 65536 ? "uint16" : "uint32";
}

export function bytesPerToken(dtype: ShardIndex["dtype"]): number {
  return dtype === "uint16" ? 2 : 4;
}

/** A parsed index.json, checked: schema, and sizes that agree with the dtype and the totals. */
export function checkShardIndex(json: unknown, source: string): ShardIndex {
  const parsed = indexSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${source}: not a kiln shard index: field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const index = parsed.data;
  const width = bytesPerToken(index.dtype);
  if (index.dtype !== dtypeFor(index.vocabSize)) throw new Error(`${source}: dtype ${index.dtype} does not fit vocabSize ${index.vocabSize}`);
  for (const name of ["train", "val"] as const) {
    const split = index.splits[name];
    let total = 0;
    for (const s of split.shards) {
      if (s.bytes !== s.tokens * width) throw new Error(`${source}: ${name} shard ${s.file}: ${s.bytes} bytes is not ${s.tokens} tokens x ${width} bytes`);
      total += s.tokens;
    }
    if (total !== split.tokens) throw new Error(`${source}: ${name} split says ${split.tokens} tokens, its shards hold ${total}`);
  }
  return index;
}
