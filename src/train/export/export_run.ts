// export_run.ts: a trained model exported for inference (export_writer.ts), from either place its
// weights are: the trainer's state at the end of `kiln train` (run.ts, when the config has an export
// section), or a checkpoint folder on disk (`kiln export`). Both build the same LoadedModel: the run
// config's model section (model_config.ts) with the vocabulary size of the embedding, the tensors by
// their (GGUF) names, and the run's tokenizer (run_tokenizer.ts).

import { existsSync, statSync } from "node:fs";
import { basename, dirname, resolve, sep } from "node:path";
import type { LoadedModel, MetaValue, TensorEntry, Tokenizer } from "../../models/index.js";
import { memoryTensor } from "../../models/index.js";
import type { CheckpointState } from "../checkpoint/index.js";
import { CHECKPOINT_FILES, CheckpointError, latestGoodCheckpoint, loadCheckpoint } from "../checkpoint/index.js";
import type { TrainConfig } from "../config.js";
import { parseTrainConfig } from "../config.js";
import { trainModelConfig } from "../model_config.js";
import { configPath } from "../run_data.js";
import type { TrainState } from "../trainer.js";
import type { ExportFormat, ExportResult } from "./export_writer.js";
import { ExportError, writeExport } from "./export_writer.js";
import { runTokenizer, tokenizerFile } from "./run_tokenizer.js";

/** A named f32 tensor of the trained model. */
export interface NamedWeights {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface ExportTarget {
  readonly out: string;
  readonly formats: readonly ExportFormat[];
  /** The tokenizer file of a run on prepared shards, when it is not beside their index.json. */
  readonly tokenizer?: string;
}

/** The trained weights as a LoadedModel of the run's architecture (names and shapes checked). */
export function trainedModel(cfg: TrainConfig, weights: readonly NamedWeights[], source: string, tokenizer: Tokenizer): LoadedModel {
  if (cfg.model.moe) throw new ExportError(`export: ${source} is a mixture-of-experts model; exporting one (GGUF/HF expert tensors and metadata) is not done yet`);
  const embd = weights.find((w) => w.name === "token_embd.weight");
  if (!embd || embd.shape.length !== 2) throw new ExportError(`export: ${source} has no 2-D token_embd.weight, so it is not a kiln ${cfg.model.arch} model`);
  const config = trainModelConfig(cfg.model, embd.shape[0]!);
  const tensors = new Map<string, TensorEntry>(weights.map((w) => [w.name, memoryTensor(w.shape, w.data)]));
  const metadata = new Map<string, MetaValue>([["general.architecture", config.arch], ["general.name", cfg.tracking?.name ?? `kiln-${config.arch}`]]);
  const s = tokenizer.spec;
  // NOTE: config.json's bos/eos_token_id come from these keys (hf_config.ts); a character vocabulary has neither.
  if (s.bosId !== undefined) metadata.set("tokenizer.ggml.bos_token_id", s.bosId);
  if (s.eosId !== undefined) metadata.set("tokenizer.ggml.eos_token_id", s.eosId);
  return { config, tensors, source, metadata };
}

/** Exports the model a run trained (`cfg`, paths relative to `baseDir`) from its weights at `step`. */
export function exportTrained(cfg: TrainConfig, baseDir: string, weights: readonly NamedWeights[], step: number, source: string, target: ExportTarget): ExportResult {
  const tokenizer = runTokenizer(cfg, baseDir, target.tokenizer);
  const model = trainedModel(cfg, weights, source, tokenizer);
  return writeExport({ model, tokenizer, out: target.out, formats: target.formats, step, source });
}

/** Exports the model of a trainer's state (run.ts, at the end of a run with an export section). */
export function exportTrainState(cfg: TrainConfig, baseDir: string, state: TrainState): ExportResult {
  const x = cfg.export;
  if (!x) throw new ExportError("export: the config has no export section");
  const weights = state.layout.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    return { name: s.name, shape: s.shape, data: state.params.subarray(s.offset, s.offset + n) };
  });
  const target = { out: configPath(x.dir, baseDir), formats: x.formats, ...(x.tokenizer === undefined ? {} : { tokenizer: x.tokenizer }) };
  return exportTrained(cfg, baseDir, weights, state.step, `the trained ${cfg.model.arch} at step ${state.step}`, target);
}

/** The checkpoint folder `path` names: a step folder itself, or the newest good one under a run's checkpoint root. */
export function findCheckpoint(path: string, warn: (m: string) => void): string {
  if (!existsSync(path)) throw new ExportError(`export: checkpoint ${path} does not exist`);
  if (!statSync(path).isDirectory()) throw new ExportError(`export: checkpoint ${path} is not a folder (give a step-NNNNNN folder or a run's checkpoint folder)`);
  if (existsSync(`${path}/${CHECKPOINT_FILES.manifest}`) || existsSync(`${path}/${CHECKPOINT_FILES.state}`)) return path;
  const good = latestGoodCheckpoint(path, warn);
  if (!good) throw new ExportError(`export: ${path} holds no good checkpoint (neither a step folder with ${CHECKPOINT_FILES.manifest} nor a folder of them)`);
  return good.dir;
}

/**
 * The folder a run's relative paths are relative to: the config file's, when known; else the folder
 * that the checkpoint root is `checkpoint.dir` of; else the working directory.
 */
function runBaseDir(cfg: TrainConfig, checkpointDir: string, configFile: string | undefined): string {
  if (configFile !== undefined) return dirname(resolve(configFile));
  const rel = cfg.checkpoint?.dir;
  const root = dirname(resolve(checkpointDir));
  if (rel !== undefined && !rel.startsWith("/")) {
    const tail = resolve("/", rel);
    if (root.endsWith(tail)) return root.slice(0, root.length - tail.length) || sep;
  }
  return process.cwd();
}

export interface CheckpointExportOptions extends ExportTarget {
  /** A checkpoint folder, or a run's checkpoint root (its newest good checkpoint). */
  readonly checkpoint: string;
  /** The run's config file, for where its data (and so its tokenizer) is. */
  readonly configFile?: string;
  readonly warn?: (message: string) => void;
}

/** Exports the model of a checkpoint; a missing or corrupted checkpoint is an ExportError naming why. */
export function exportCheckpoint(o: CheckpointExportOptions): ExportResult & { readonly checkpoint: string; readonly step: number } {
  const dir = findCheckpoint(o.checkpoint, o.warn ?? console.warn);
  let state: CheckpointState;
  try {
    state = loadCheckpoint(dir);
  } catch (err) {
    if (err instanceof CheckpointError) throw new ExportError(`export: ${err.message}`);
    throw err;
  }
  let cfg: TrainConfig;
  try {
    cfg = parseTrainConfig(state.config, `${dir}/${CHECKPOINT_FILES.state} config`);
  } catch (err) {
    throw new ExportError(`export: the checkpoint's config is not a training config kiln reads: ${(err as Error).message}`);
  }
  const weights = state.model.tensors.map((t) => {
    if (t.dtype !== "F32") throw new ExportError(`export: ${dir}: tensor '${t.name}' is ${t.dtype}; kiln's training checkpoints are F32`);
    return { name: t.name, shape: t.shape, data: new Float32Array(t.bytes.slice().buffer) };
  });
  const baseDir = runBaseDir(cfg, dir, o.configFile);
  // NOTE: for prepared shards the file given is checked against the index's sha256 (runTokenizer).
  const given = o.tokenizer === undefined ? undefined : resolve(o.tokenizer);
  const tokenizer = given !== undefined && cfg.data.index === undefined ? tokenizerFile(given) : runTokenizer(cfg, baseDir, given);
  const model = trainedModel(cfg, weights, `${basename(dir)} of ${dirname(dir)}`, tokenizer);
  const result = writeExport({ model, tokenizer, out: o.out, formats: o.formats, step: state.step, source: dir });
  return { ...result, checkpoint: dir, step: state.step };
}
