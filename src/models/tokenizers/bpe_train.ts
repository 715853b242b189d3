// bpe_train.ts: trains a GPT-2 style byte-level BPE vocabulary on text. Text is cut at special tokens,
// pre-tokenized by GPT-2's regex into words, each word spelled as byte-level characters; then the most
// frequent adjacent pair is merged until the vocabulary is full. Pair counts are updated incrementally:
// a merge touches only the words that contain the pair (an index from pair to words), and a heap with
// lazy invalidation yields the next best pair, so a merge costs its words, not the corpus.
// It does not encode text or write files: the result is a TokenizerSpec (tokenizer.ts encodes with it,
// hf_tokenizer_write.ts turns it into tokenizer.json).

import { BYTE_TO_CHAR, splitGpt2, toByteChars } from "./byte_level.js";
import { Heap } from "./heap.js";
import { TokenType, type TokenizerSpec } from "./types.js";

export interface BpeTrainOptions {
  /** The vocabulary size wanted: special tokens + 256 bytes + merges. */
  readonly vocabSize: number;
  /** Added first, with ids 0..k-1, never merged (default ["<|endoftext|>"]). The first is BOS/EOS. */
  readonly specialTokens?: readonly string[];
  /** A pair seen fewer times than this is never merged (default 2); training may then stop early. */
  readonly minFrequency?: number;
}

export interface BpeTrainResult {
  readonly spec: TokenizerSpec;
  /** Each distinct training word (as text) and the token ids training left it as. */
  readonly wordIds: ReadonlyMap<string, readonly number[]>;
}

interface Candidate {
  readonly key: number;
  readonly count: number;
}

// NOTE: a pair of ids is one number a * SPAN + b; ids stay far below 2^26, so the key is an exact integer.
const SPAN = 2 ** 26;

/**
 * Ties between equally frequent pairs go to the pair whose ids are smaller (left, then right), as the
 * Hugging Face trainer orders them: the result depends on the text only.
 */
const better = (a: Candidate, b: Candidate): boolean => a.count > b.count || (a.count === b.count && a.key < b.key);

export function trainBpe(texts: Iterable<string>, options: BpeTrainOptions): BpeTrainResult {
  const specials = options.specialTokens ?? ["<|endoftext|>"];
  const minFrequency = options.minFrequency ?? 2;
  const base = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base) {
    throw new Error(`tokenizer training: vocabulary size ${options.vocabSize} is below ${base} (${specials.length} special tokens + 256 bytes)`);
  }
  if (options.vocabSize >= SPAN) throw new Error(`tokenizer training: vocabulary size ${options.vocabSize} is above the limit ${SPAN - 1}`);
  if (new Set(specials).size !== specials.length || specials.some((s) => s === "")) throw new Error("tokenizer training: special tokens must be distinct and non-empty");

  const tokens: string[] = [...specials, ...BYTE_TO_CHAR];
  const byteId = new Map(BYTE_TO_CHAR.map((c, b) => [c, specials.length + b]));
  const counts = countWords(texts, specials);
  if (counts.size === 0) throw new Error("tokenizer training: the corpus has no text outside special tokens");

  const words: number[][] = [];
  const freq: number[] = [];
  const wordText: string[] = [];
  for (const [w, n] of counts) {
    words.push(toByteChars(w).map((c) => byteId.get(c)!));
    freq.push(n);
    wordText.push(w);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number): void => {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i]! * SPAN + w[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[wi]!);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (set === undefined) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);
  const heap = new Heap<Candidate>(better);
  for (const [key, count] of pairCount) heap.push({ key, count });

  const merges: string[] = [];
  while (tokens.length < options.vocabSize) {
    const top = heap.pop();
    if (top === undefined) break;
    // NOTE: the heap keeps stale entries; one whose count no longer matches is skipped (a fresh entry was pushed).
    if (pairCount.get(top.key) !== top.count) continue;
    if (top.count < Math.max(1, minFrequency)) break;
    const left = Math.floor(top.key / SPAN);
    const right = top.key % SPAN;
    const id = tokens.length;
    tokens.push(tokens[left]! + tokens[right]!);
    merges.push(`${tokens[left]!} ${tokens[right]!}`);
    const touched = new Set<number>();
    for (const wi of pairWords.get(top.key) ?? []) {
      const w = words[wi]!;
      if (!containsPair(w, left, right)) continue;
      addPairs(wi, -1);
      words[wi] = mergePair(w, left, right, id);
      addPairs(wi, 1);
      for (let i = 0; i + 1 < words[wi]!.length; i++) touched.add(words[wi]![i]! * SPAN + words[wi]![i + 1]!);
      for (let i = 0; i + 1 < w.length; i++) touched.add(w[i]! * SPAN + w[i + 1]!);
    }
    pairWords.delete(top.key);
    for (const key of touched) {
      const count = pairCount.get(key)!;
      if (count > 0) heap.push({ key, count });
      else pairCount.delete(key);
    }
  }

  const wordIds = new Map<string, readonly number[]>();
  wordText.forEach((t, i) => wordIds.set(t, words[i]!));
  const types = tokens.map((_, i) => (i < specials.length ? TokenType.control : TokenType.normal));
  const eos = specials.length > 0 ? { bosId: 0, eosId: 0 } : {};
  const spec: TokenizerSpec = { model: "bpe", tokens, types, merges, ...eos, addBos: false, addEos: false, addSpacePrefix: "never", preTokenizer: "gpt2" };
  return { spec, wordIds };
}

/** Distinct GPT-2 words and how often each occurs, with special tokens cut out of the text. */
function countWords(texts: Iterable<string>, specials: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const cut = specials.length === 0 ? undefined : new RegExp(specials.map(escapeRegExp).join("|"), "u");
  for (const text of texts) {
    for (const segment of cut === undefined ? [text] : text.split(cut)) {
      for (const w of splitGpt2(segment)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

function containsPair(w: readonly number[], left: number, right: number): boolean {
  for (let i = 0; i + 1 < w.length; i++) if (w[i] === left && w[i + 1] === right) return true;
  return false;
}

/** Left to right, non-overlapping: "a a a" with (a, a) becomes "aa a", as encoding by rank does. */
function mergePair(w: readonly number[], left: number, right: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    if (i + 1 < w.length && w[i] === left && w[i + 1] === right) {
      out.push(id);
      i++;
    } else {
      out.push(w[i]!);
    }
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
