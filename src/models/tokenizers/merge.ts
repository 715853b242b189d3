// merge.ts: the BPE merge loop shared by every tokenizer here. Symbols start as single characters;
// the best adjacent pair is merged until no pair qualifies. "Best" is a priority chosen by the caller:
// the score of the merged piece (SentencePiece, llama.cpp's llm_tokenizer_spm) or minus the rank of
// the merge (GPT-2 / Hugging Face BPE, llama.cpp's llm_tokenizer_bpe). Ties go to the leftmost pair,
// as in both references. It does not map symbols to ids: the caller does.

import { Heap } from "./heap.js";

interface Bigram {
  readonly left: number;
  readonly right: number;
  readonly leftText: string;
  readonly rightText: string;
  readonly priority: number;
}

const before = (a: Bigram, b: Bigram): boolean => a.priority > b.priority || (a.priority === b.priority && a.left < b.left);

/**
 * Merges adjacent symbols in place of a linked list. `priority(left, right)` returns undefined when the
 * pair may not merge. Returns the surviving symbols in order.
 */
export function mergeSymbols(symbols: readonly string[], priority: (left: string, right: string) => number | undefined): string[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const text = symbols.slice();
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const queue = new Heap<Bigram>(before);
  const tryAdd = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const leftText = text[left]!;
    const rightText = text[right]!;
    const p = priority(leftText, rightText);
    if (p !== undefined) queue.push({ left, right, leftText, rightText, priority: p });
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  for (let bigram = queue.pop(); bigram !== undefined; bigram = queue.pop()) {
    const { left, right } = bigram;
    // NOTE: the queue keeps pairs that later merges made stale; skip any whose sides changed.
    if (next[left] !== right || text[left] !== bigram.leftText || text[right] !== bigram.rightText) continue;
    text[left] = bigram.leftText + bigram.rightText;
    text[right] = "";
    const after = next[right]!;
    next[left] = after;
    if (after >= 0) prev[after] = left;
    next[right] = -2; // dead
    tryAdd(prev[left]!, left);
    tryAdd(left, after);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]!) out.push(text[i]!);
  return out;
}
