// resolve_model.ts: turns what a user names on the command line into a PlanModel: a preset name,
// a Hugging Face config.json (or a folder holding one), a GGUF file, or anything else loadModel
// opens (llama2.c checkpoints, built-in models). Only the shape is read: no weights.

import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { builtinModel, ggufConfig, loadModel, readGguf } from "../models/formats/index.js";
import type { MoeShape, PlanModel } from "./plan_model.js";
import { planModelFromConfig, planModelFromHf } from "./plan_model.js";
import { findPreset, findPresetByHubName, knownModelsText } from "./presets.js";
import { PlanInputError } from "./units.js";

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new PlanInputError(`${path}: cannot read JSON: ${(err as Error).message}`);
  }
}

function isGguf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString("latin1") === "GGUF";
  } finally {
    closeSync(fd);
  }
}

/** A GGUF file's shape from its metadata; llama.expert_count / expert_used_count make it an MoE. */
function fromGguf(path: string): PlanModel {
  const g = readGguf(path);
  const base = planModelFromConfig(ggufConfig(g), basename(path));
  const arch = String(g.metadata.get("general.architecture"));
  const num = (k: string): number | undefined => {
    const v = g.metadata.get(`${arch}.${k}`);
    return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
  };
  const experts = num("expert_count") ?? 0;
  if (experts === 0) return base;
  const moe: MoeShape = {
    experts, topK: num("expert_used_count") ?? 2, sharedExperts: num("expert_shared_count") ?? 0,
    expertHiddenDim: num("expert_feed_forward_length") ?? base.hiddenDim, denseLayers: num("leading_dense_block_count") ?? 0,
  };
  return { ...base, moe };
}

/** A preset name, or a path to config.json, a Hugging Face folder, a GGUF file or another model file. */
export function resolveModel(nameOrPath: string): PlanModel {
  const preset = findPreset(nameOrPath);
  if (preset) return preset;
  const onDisk = existsSync(nameOrPath);
  // NOTE: a file or folder of that name wins over the hub-name reading (a local meta-llama/Llama-2-7b-hf).
  const hub = onDisk ? undefined : findPresetByHubName(nameOrPath);
  if (hub) return hub;
  if (!onDisk && !builtinModel(nameOrPath)) {
    throw new PlanInputError(`unknown model '${nameOrPath}': not a preset and no such file (presets: ${knownModelsText()}; Hugging Face names such as meta-llama/Llama-2-7b-hf or Llama-3.1-8B; or give a config.json, a Hugging Face folder or a GGUF file)`);
  }
  const isDir = onDisk && statSync(nameOrPath).isDirectory();
  if (isDir && existsSync(join(nameOrPath, "config.json"))) {
    const cfg = join(nameOrPath, "config.json");
    return planModelFromHf(readJson(cfg), cfg, basename(nameOrPath));
  }
  if (onDisk && !isDir && nameOrPath.endsWith(".json")) return planModelFromHf(readJson(nameOrPath), nameOrPath, basename(nameOrPath, ".json"));
  if (onDisk && !isDir && isGguf(nameOrPath)) return fromGguf(nameOrPath);
  // A llama2.c checkpoint or a built-in model (stories260K): loadModel reads its header.
  try {
    return planModelFromConfig(loadModel(nameOrPath).config, basename(nameOrPath));
  } catch (err) {
    throw new PlanInputError((err as Error).message);
  }
}
