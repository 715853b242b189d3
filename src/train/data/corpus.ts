// corpus.ts: reads training corpora into documents. A .jsonl file holds one JSON object per line and
// the document is one string field of it; any other file is UTF-8 text, one document per file unless a
// separator cuts it into several. Bad input (a missing file, an empty corpus, invalid UTF-8, a line that
// is not JSON or lacks the field) is refused with the file, and the line or byte offset.
// It does not tokenize: prepare.ts and the tokenizer trainer do.

import { readFileSync, statSync } from "node:fs";
import { decodeUtf8Strict } from "./utf8.js";

export interface CorpusOptions {
  /** The string field of each JSONL record that holds the text (default "text"). */
  readonly jsonlField?: string;
  /** Cuts text files into documents at this string (default: a text file is one document). */
  readonly docSeparator?: string;
}

export function isJsonl(path: string): boolean {
  return /\.jsonl$/i.test(path);
}

/** The documents of every file, in order; throws when a file is unreadable or the corpus is empty. */
export function readCorpus(paths: readonly string[], options: CorpusOptions = {}): string[] {
  if (paths.length === 0) throw new Error("corpus: no input files given");
  const docs: string[] = [];
  for (const path of paths) {
    const fileDocs = readCorpusFile(path, options);
    if (fileDocs.length === 0) throw new Error(`${path}: the file has no text (an empty corpus cannot be trained on)`);
    docs.push(...fileDocs);
  }
  return docs;
}

export function readCorpusFile(path: string, options: CorpusOptions = {}): string[] {
  let bytes: Uint8Array;
  try {
    if (!statSync(path).isFile()) throw new Error("not a regular file");
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read the corpus file (${(err as Error).message})`);
  }
  const text = decodeUtf8Strict(bytes, path);
  if (isJsonl(path)) return jsonlDocuments(text, path, options.jsonlField ?? "text");
  const sep = options.docSeparator;
  const docs = sep === undefined || sep === "" ? [text] : text.split(sep);
  return docs.filter((d) => d.length > 0);
}

function jsonlDocuments(text: string, path: string, field: string): string[] {
  const docs: string[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const where = `${path}:${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof record !== "object" || record === null || Array.isArray(record)) throw new Error(`${where}: expected a JSON object per line`);
    const value = (record as Record<string, unknown>)[field];
    if (value === undefined) throw new Error(`${where}: the record has no field "${field}" (choose the field with --jsonl-field)`);
    if (typeof value !== "string") throw new Error(`${where}: field "${field}" is a ${Array.isArray(value) ? "array" : typeof value}, not a string`);
    if (value.length > 0) docs.push(value);
  });
  return docs;
}
