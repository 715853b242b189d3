// spm_merges.ts: converts between SentencePiece scores and ranked BPE merges, for writing a tokenizer
// in the other format's terms. Scores -> merges follows Hugging Face's SentencePieceExtractor (every
// split of a piece into two pieces of the vocabulary, best-scored piece first), which is how Llama's
// tokenizer.json was made. Merges -> scores gives each piece minus the rank of the first merge that
// makes it. It does not tokenize.

import { TokenType, type TokenizerSpec } from "./types.js";

/** Ranked "left right" merges equivalent to a SentencePiece vocabulary's scores. */
export function mergesFromScores(spec: TokenizerSpec): string[] {
  const scores = spec.scores;
  if (scores === undefined) throw new Error("tokenizer: merges from scores needs a vocabulary with scores");
  const ids = new Map<string, number>();
  spec.tokens.forEach((piece, id) => ids.set(piece, id));
  const candidates: { left: number; right: number; id: number }[] = [];
  spec.tokens.forEach((piece, id) => {
    if (spec.types[id] !== TokenType.normal && spec.types[id] !== TokenType.userDefined) return;
    const chars = Array.from(piece);
    const local: { left: number; right: number; id: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = ids.get(chars.slice(0, i).join(""));
      const right = ids.get(chars.slice(i).join(""));
      if (left !== undefined && right !== undefined) local.push({ left, right, id });
    }
    local.sort((a, b) => a.left - b.left || a.right - b.right);
    candidates.push(...local);
  });
  // NOTE: Array.prototype.sort is stable: equal scores keep vocabulary order, as in the extractor.
  candidates.sort((a, b) => scores[b.id]! - scores[a.id]!);
  return candidates.map((c) => `${spec.tokens[c.left]} ${spec.tokens[c.right]}`);
}

/** One score per token from ranked merges: pieces a merge makes score -rank, the rest below them all. */
export function derivedScores(spec: TokenizerSpec): number[] {
  const merges = spec.merges;
  if (merges === undefined) throw new Error("tokenizer: scores from merges needs a vocabulary with merges");
  const ids = new Map<string, number>();
  spec.tokens.forEach((piece, id) => ids.set(piece, id));
  const scores = spec.tokens.map((_, id) => (spec.types[id] === TokenType.normal ? -(merges.length + id) : 0));
  const made = new Set<number>();
  merges.forEach((m, rank) => {
    const id = ids.get(m.replace(" ", ""));
    if (id !== undefined && !made.has(id)) {
      made.add(id);
      scores[id] = -rank;
    }
  });
  return scores;
}
