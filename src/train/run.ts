// run.ts: one training run from a TrainConfig (config.ts): read and tokenize the text, split off the
// held-out part, build and initialise the model, train with the Trainer, evaluate every
// eval.interval steps and at the end, and save the final checkpoint. It owns the run's order and its
// log lines; every piece of the work is the modules it calls. The CLI (`kiln train`) is a thin shell over it.

import type { Backend } from "../index.js";
import { requireNodeBuiltin } from "../core/host.js";
import { Gpt2 } from "../models/gpt2.js";
import { Llama } from "../models/llama.js";
import { RandomWindows } from "./batches.js";
import { charVocab } from "./char_vocab.js";
import { directoryCheckpoints } from "./checkpoint_io.js";
import type { TrainConfig } from "./config.js";
import { initParameters } from "./init.js";
import type { TrainableModel } from "./loss.js";
import type { StepStats } from "./trainer.js";
import { Trainer } from "./trainer.js";

export interface RunOptions {
  readonly backend: Backend;
  /** Folder that data.path is relative to (the config file's). */
  readonly baseDir: string;
  /** Stop after this many steps (for measuring; the schedule still follows train.iters). */
  readonly maxIters?: number;
  readonly log?: (line: string) => void;
}

export interface RunResult {
  readonly steps: readonly StepStats[];
  /** Held-out loss after the last step. */
  readonly valLoss: number;
  readonly params: number;
}

function buildModel(cfg: TrainConfig, vocabSize: number, backend: Backend): TrainableModel {
  const m = cfg.model;
  if (m.arch === "gpt2") return new Gpt2({ arch: "gpt2", dim: m.dim, nLayers: m.nLayers, nHeads: m.nHeads, vocabSize, maxSeqLen: m.blockSize, normEps: m.normEps }, backend);
  const hiddenDim = m.hiddenDim ?? Math.ceil((8 * m.dim) / 3 / 8) * 8;
  return new Llama({
    arch: "llama", dim: m.dim, hiddenDim, nLayers: m.nLayers, nHeads: m.nHeads, nKvHeads: m.nKvHeads ?? m.nHeads, headDim: m.dim / m.nHeads,
    vocabSize, maxSeqLen: m.blockSize, normEps: m.normEps, ropeTheta: 10000, tiedEmbeddings: true,
  }, backend, { foldNorms: false, fuseQkv: false });
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const fs = requireNodeBuiltin("node:fs", "reading the training text");
  const log = opts.log ?? (() => {});
  const path = cfg.data.path.startsWith("/") ? cfg.data.path : `${opts.baseDir}/${cfg.data.path}`;
  if (!fs.existsSync(path)) throw new Error(`data.path: ${path} does not exist`);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(path));
  const vocab = charVocab(text);
  const ids = vocab.encode(text);
  const split = Math.floor(ids.length * (1 - cfg.data.valFraction));
  const { batchSize, blockSize, seed } = { ...cfg.train, blockSize: cfg.model.blockSize };
  const trainData = new RandomWindows(ids.subarray(0, split), batchSize, blockSize, seed);
  const valData = new RandomWindows(ids.subarray(split), batchSize, blockSize, seed + 1);

  const model = buildModel(cfg, vocab.chars.length, opts.backend);
  await initParameters(model, { seed });
  const o = cfg.optimizer;
  const schedule = cfg.schedule.kind === "cosine" ? { ...cfg.schedule, lr: o.lr } : { kind: "constant" as const, lr: o.lr };
  const trainer = new Trainer(model, trainData, {
    schedule,
    adamw: { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay },
    gradAccumSteps: cfg.train.gradAccumSteps,
    ...(cfg.train.maxGradNorm > 0 ? { maxGradNorm: cfg.train.maxGradNorm } : {}),
  });
  log(`${cfg.model.arch}: ${trainer.layout.size} parameters, vocab ${vocab.chars.length} (char), ${split} training and ${ids.length - split} held-out tokens, on ${opts.backend.name}`);

  const evaluate = async () => {
    let sum = 0;
    for (let i = 0; i < cfg.eval.batches; i++) sum += await trainer.evalLoss(valData, i);
    return sum / cfg.eval.batches;
  };
  const iters = Math.min(cfg.train.iters, opts.maxIters ?? Infinity);
  const steps: StepStats[] = [];
  let valLoss = NaN;
  for (let i = 0; i < iters; i++) {
    const s = await trainer.trainStep();
    steps.push(s);
    if (!Number.isFinite(s.loss)) throw new Error(`step ${s.step}: the loss is ${s.loss} (diverged; lower optimizer.lr?)`);
    log(`step ${s.step + 1}/${cfg.train.iters} | loss ${s.loss.toFixed(4)} | lr ${s.lr.toExponential(2)} | grad norm ${s.gradNorm.toFixed(3)} | ${s.ms.toFixed(0)} ms`);
    if ((s.step + 1) % cfg.eval.interval === 0 || i === iters - 1) {
      valLoss = await evaluate();
      log(`step ${s.step + 1}: held-out loss ${valLoss.toFixed(4)} (${cfg.eval.batches} batches)`);
    }
  }
  if (cfg.out) {
    await directoryCheckpoints.save(cfg.out, await trainer.state(), { config: cfg, vocab: vocab.chars.join("") });
    log(`checkpoint: ${cfg.out} (step ${trainer.step})`);
  }
  return { steps, valLoss, params: trainer.layout.size };
}
