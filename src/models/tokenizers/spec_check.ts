// spec_check.ts: checks that a TokenizerSpec is self-consistent before a tokenizer is built from it,
// so that a bad file fails with the field's name rather than with wrong ids later. It does not read
// files or know their formats.

import { TokenType, type TokenizerSpec } from "./types.js";

export function validateSpec(spec: TokenizerSpec, source: string): void {
  const fail = (msg: string): never => {
    throw new Error(`tokenizer (${source}): ${msg}`);
  };
  const n = spec.tokens.length;
  if (n === 0) fail("the vocabulary is empty");
  if (spec.types.length !== n) fail(`token types has ${spec.types.length} entries for ${n} tokens`);
  for (let i = 0; i < n; i++) {
    const t = spec.types[i]!;
    if (!Number.isInteger(t) || t < TokenType.undefined || t > TokenType.byte) fail(`token ${i} ("${spec.tokens[i]}") has unknown token type ${t}`);
  }
  if (spec.scores !== undefined && spec.scores.length !== n) fail(`scores has ${spec.scores.length} entries for ${n} tokens`);
  if (spec.model === "bpe" && spec.merges === undefined) fail("a byte-level BPE vocabulary needs merges");
  if (spec.model === "spm" && spec.merges === undefined && spec.scores === undefined) fail("a SentencePiece vocabulary needs scores or merges");
  if (spec.merges !== undefined) {
    const pieces = new Set(spec.tokens);
    spec.merges.forEach((m, i) => {
      const parts = m.split(" ");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") fail(`merge ${i} ("${m}") is not "left right"`);
      const missing = [parts[0]!, parts[1]!, parts[0]! + parts[1]!].find((p) => !pieces.has(p));
      if (missing !== undefined) fail(`merge ${i} ("${m}") uses "${missing}", which is not in the vocabulary`);
    });
  }
  const ids: [string, number | undefined][] = [
    ["BOS id", spec.bosId],
    ["EOS id", spec.eosId],
    ["unknown-token id", spec.unkId],
    ["padding id", spec.padId],
  ];
  for (const [what, id] of ids) {
    if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= n)) fail(`${what} ${id} is out of range for a vocabulary of ${n} tokens`);
  }
  if (spec.addBos && spec.bosId === undefined) fail("it adds BOS but has no BOS id");
  if (spec.addEos && spec.eosId === undefined) fail("it adds EOS but has no EOS id");
}

