// fixtures.ts: where tests find the data files that ship with the repository: test/fixtures/ (llama.cpp's
// vocab files and tokenizer vectors, the tiny random GGUF), models/ (the bundled stories260K) and data/
// (the training corpora). Each folder has a PROVENANCE.md. A missing file is an error, never a skip: a
// clone without its fixtures is a broken clone, and a test that silently skipped would hide that.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Absolute path of `rel` (relative to the repository root); throws when the file is missing. */
export function repoFile(rel: string): string {
  const p = REPO + rel;
  if (!existsSync(p)) throw new Error(`test fixture missing: ${rel} (it ships with the repository; see its folder's PROVENANCE.md)`);
  return p;
}

/** Absolute path of `rel` inside test/fixtures/; throws when the file is missing. */
export function fixture(rel: string): string {
  return repoFile(`test/fixtures/${rel}`);
}

export const TINY_GGUF = fixture("llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
export const VOCAB_GPT2_GGUF = fixture("ggml-vocab/ggml-vocab-gpt-2.gguf");
export const STORIES260K_BIN = repoFile("models/stories260K/stories260K.bin");
export const STORIES260K_TOKENIZER = repoFile("models/stories260K/tok512.bin");
