// export_writer.ts: writes a trained model as a folder that inference tools open: a Hugging Face
// folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// generation_config.json) and/or one GGUF file (model.gguf, tokenizer in its metadata), plus
// export.json (what was exported, from which step, and size + sha256 of every file). The folder is
// written under a hidden temp name beside the target, fsynced, and renamed into place, so a failed or
// killed export never leaves a folder that looks like a good one. It owns the folder's layout and its
// commit; the formats themselves are models/formats' writers.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { LoadedModel, Tokenizer } from "../../models/index.js";
import { tokenizerToGgufMetadata, tokenizerToHfConfig, tokenizerToHfJson, writeGguf, writeHfFolder } from "../../models/index.js";
import { kilnVersion } from "../checkpoint/checkpoint_manifest.js";
import { fileDigest } from "../tracking/run.js";

export type ExportFormat = "hf" | "gguf";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["hf", "gguf"];
export const EXPORT_MANIFEST = "export.json";
export const EXPORT_GGUF = "model.gguf";

export interface ExportRequest {
  /** The model (GGUF tensor names and layouts, as kiln's models hold them). */
  readonly model: LoadedModel;
  readonly tokenizer: Tokenizer;
  /** The folder to create (replaced only when it is an earlier kiln export). */
  readonly out: string;
  readonly formats: readonly ExportFormat[];
  /** The training step the weights are from, and what they were read from (a checkpoint, a run). */
  readonly step: number;
  readonly source: string;
}

export interface ExportedFile {
  /** Relative to the export folder. */
  readonly name: string;
  /** Which format the file belongs to (the manifest is "manifest"). */
  readonly format: ExportFormat | "manifest";
  readonly sha256: string;
  readonly bytes: number;
}

export interface ExportResult {
  readonly dir: string;
  readonly files: readonly ExportedFile[];
}

/** Why an export was refused or failed; the target is untouched (or absent) when this is thrown. */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExportError";
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } catch (err) {
    // NOTE: some file systems cannot fsync a folder; the rename is still atomic there.
    if (!statSync(path).isDirectory()) throw err;
  } finally {
    closeSync(fd);
  }
}

/** Whether `dir` holds an earlier export (so it may be replaced), not someone's other folder. */
function isExport(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, EXPORT_MANIFEST), "utf8")) as { format?: unknown };
    return m.format === "kiln-export";
  } catch {
    return false;
  }
}

/** The files each format writes into the folder, in the order they are listed in the manifest. */
function writeFormats(tmp: string, r: ExportRequest): ExportedFile[] {
  const written: { name: string; format: ExportFormat }[] = [];
  const list = (format: ExportFormat) => {
    for (const name of readdirSync(tmp).sort()) if (!written.some((w) => w.name === name)) written.push({ name, format });
  };
  if (r.formats.includes("hf")) {
    writeHfFolder(tmp, r.model, { tokenizerJson: tokenizerToHfJson(r.tokenizer), tokenizerConfig: tokenizerToHfConfig(r.tokenizer) });
    const s = r.tokenizer.spec;
    // NOTE: transformers' generate() reads its defaults here; null ids for a vocabulary without BOS/EOS (characters).
    const gen = { bos_token_id: s.bosId ?? null, eos_token_id: s.eosId ?? null, max_length: r.model.config.maxSeqLen, do_sample: false };
    writeFileSync(join(tmp, "generation_config.json"), `${JSON.stringify(gen, null, 2)}\n`);
    list("hf");
  }
  if (r.formats.includes("gguf")) {
    writeGguf(join(tmp, EXPORT_GGUF), r.model, { tokenizerMetadata: tokenizerToGgufMetadata(r.tokenizer) });
    list("gguf");
  }
  return written.map((w) => {
    const path = join(tmp, w.name);
    fsyncPath(path);
    return { ...w, ...fileDigest(path) };
  });
}

/** Writes the export folder (temp name, fsync, rename); throws an ExportError naming what went wrong. */
export function writeExport(r: ExportRequest): ExportResult {
  if (r.formats.length === 0 || r.formats.some((f) => !EXPORT_FORMATS.includes(f))) throw new ExportError(`export: formats must be some of ${EXPORT_FORMATS.join(", ")}, got [${r.formats.join(", ")}]`);
  const v = r.model.config.vocabSize;
  if (r.tokenizer.vocabSize !== v) throw new ExportError(`export: the tokenizer has ${r.tokenizer.vocabSize} tokens, the model's embedding ${v} rows (a tokenizer of another run?)`);
  const out = resolve(r.out);
  if (existsSync(out) && !isExport(out)) {
    throw new ExportError(`export: ${out} already exists and is not a kiln export (no ${EXPORT_MANIFEST}); name a new folder, or remove it`);
  }
  const parent = dirname(out);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (err) {
    throw new ExportError(`export: cannot create the folder ${parent} for ${basename(out)}: ${(err as Error).message}`);
  }
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}`);
  const old = join(parent, `.${basename(out)}.old-${process.pid}`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const files = writeFormats(tmp, r);
    const manifest = {
      format: "kiln-export",
      kilnVersion: kilnVersion(),
      architecture: r.model.config.arch,
      step: r.step,
      source: r.source,
      formats: r.formats,
      files: files.map((f) => ({ name: f.name, format: f.format, bytes: f.bytes, sha256: f.sha256 })),
    };
    writeFileSync(join(tmp, EXPORT_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const m = join(tmp, EXPORT_MANIFEST);
    fsyncPath(m);
    fsyncPath(tmp);
    // NOTE: an earlier export is moved aside, not deleted first: a crash between the renames leaves it under the .old name.
    const replacing = existsSync(out);
    if (replacing) renameSync(out, old);
    renameSync(tmp, out);
    if (replacing) rmSync(old, { recursive: true, force: true });
    fsyncPath(parent);
    return { dir: out, files: [...files, { name: EXPORT_MANIFEST, format: "manifest", ...fileDigest(join(out, EXPORT_MANIFEST)) }] };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    if (err instanceof ExportError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOSPC" ? "the disk is full (ENOSPC)" : e.message;
    throw new ExportError(`export to ${out} failed: ${why}; the partial write was removed${existsSync(out) ? ` and ${out} is as it was` : ""}`);
  }
}
