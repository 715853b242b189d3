// run.ts: one training run from a TrainConfig (config.ts): open the data (run_data.ts), build and
// initialise the model, resume from the newest good checkpoint when asked, train with the Trainer,
// evaluate every eval.interval steps and at the end, and checkpoint every checkpoint.every steps, at
// the end and when stopped (checkpoint/'s Checkpointer: the write runs while the next steps train;
// the run waits for it only before it returns), and at the end exports the model when the config has an
// export section (export/). It owns the run's order and reports what happens as
// events; the CLI (`kiln train`) prints them.

import type { Backend } from "../index.js";
import { nextTurn } from "../core/host.js";
import { Gpt2 } from "../models/gpt2.js";
import { Llama } from "../models/llama.js";
import type { Json } from "./checkpoint/index.js";
import type { CheckpointGroup } from "./checkpoint/index.js";
import { Checkpointer, listCheckpoints, resumeFromLatest, resumeSharded } from "./checkpoint/index.js";
import type { TrainConfig } from "./config.js";
import type { ExportedFile } from "./export/export_writer.js";
import { exportTrainState } from "./export/export_run.js";
import { initParameters } from "./init.js";
import { trainModelConfig } from "./model_config.js";
import type { TrainableModel } from "./loss.js";
import { configPath, openRunData } from "./run_data.js";
import type { BatchSource } from "./batches.js";
import type { GradientHook, StepStats, TrainerOptions, TrainState } from "./trainer.js";
import type { LayoutDescription } from "./param_layout.js";
import type { AnySharding } from "./make_trainer.js";
import { isParameterSharding, makeTrainer } from "./make_trainer.js";
import { fromCheckpointState, toCheckpointState, trainerSignature } from "./trainer_checkpoint.js";
import { loadShardedCheckpoint, saveShardedCheckpoint } from "./trainer_sharded_checkpoint.js";
import type { MemorySnapshot } from "../index.js";
import { accountedBackend, trainingMemoryOptions } from "./memory/run_memory.js";
import { sampleText } from "./sample_text.js";
import type { MoeEvalStats } from "./moe_stats.js";
import { moeEvalStats } from "./moe_stats.js";

/** What a run reports; `step` is the number of steps taken so far (a checkpoint's step). */
export type RunEvent =
  | { readonly kind: "start"; readonly arch: string; readonly params: number; readonly data: string; readonly backend: string; readonly precision: string }
  | { readonly kind: "resume"; readonly step: number; readonly dir: string }
  | { readonly kind: "step"; readonly step: number; readonly iters: number; readonly loss: number; readonly lr: number; readonly gradNorm: number; readonly ms: number; readonly lossScale: number; readonly skipped: boolean }
  | { readonly kind: "eval"; readonly step: number; readonly loss: number; readonly batches: number; readonly moe?: MoeEvalStats }
  | { readonly kind: "sample"; readonly step: number; readonly prompt: string; readonly text: string }
  | { readonly kind: "checkpoint"; readonly step: number; readonly dir: string }
  | { readonly kind: "export"; readonly step: number; readonly dir: string; readonly files: readonly ExportedFile[] }
  /** Device memory by category (memory/run_memory.ts), at each eval and at the end. */
  | { readonly kind: "memory"; readonly step: number; readonly memory: MemorySnapshot };

/**
 * What running as one rank of several changes in a run (the CLI's distributed_train.ts builds it from src/dist's
 * data parallel); absent: a single process. The run stays the same loop; these are its only seams.
 */
export interface RunParallel {
  /**
   * This rank's model, made from the whole one a single process trains (built and initialised alike on every
   * rank): tensor parallel's slices of it. Absent: the whole model.
   */
  model?(whole: TrainableModel): Promise<TrainableModel>;
  /** Before the Trainer exists: the ranks check they have the same model and `config`, and take rank 0's parameters. */
  prepare(model: TrainableModel, config: unknown): Promise<void>;
  /** This rank's batches, drawn from the run's (global) batch source. */
  batches(global: BatchSource): BatchSource;
  /** Data parallel's all-reduce of the flat gradient; absent where `trainer` reduces it (ZeRO's sharding) or nothing is to be reduced. */
  readonly gradientHook?: GradientHook;
  /**
   * The layout's own trainer options: ZeRO's optimizer sharding, tensor parallel's gradient norm, expert parallel's
   * reduction and norm, pipeline parallel's gradient source and norm (and its micro-batches as gradAccumSteps).
   */
  readonly trainer?: Pick<TrainerOptions, "gradientNorm" | "reduceGradient" | "gradientSource" | "hostGradientNorm" | "gradAccumSteps"> & {
    /** ZeRO-1/2's optimizer sharding, or ZeRO-3's parameter sharding (makeTrainer then builds its trainer). */
    readonly sharding?: AnySharding;
  };
  /** The held-out loss of `data`'s batch `i` computed by every rank together (pipeline stages); absent: the trainer's own evalLoss. */
  evalLoss?(data: BatchSource, i: number): Promise<number>;
  /** A step's loss over the whole global batch (the mean of the ranks' losses), from this rank's. */
  meanLoss(loss: number): Promise<number>;
  /** Whether this rank writes checkpoints and the export (one rank does; every rank reads them). */
  readonly writes: boolean;
  /**
   * Every rank writes its part of each checkpoint, together over this group (a distributed checkpoint with a
   * two-phase commit: ZeRO's optimizer parts), and resumes by reading its part; absent: `writes` says who writes whole ones.
   */
  readonly checkpointGroup?: CheckpointGroup;
  /**
   * Checkpoints in the single process's form though this rank trains a part of the model (tensor parallel's
   * slices): `layout` is the whole model's flat layout, `gather` makes the whole state from this rank's (a
   * collective: every rank saves; the one that `writes` writes it), `part` cuts this rank's from a whole one read back.
   */
  readonly wholeState?: { readonly layout: LayoutDescription; gather(s: TrainState): Promise<TrainState>; part(whole: TrainState): TrainState };
  /** After a resume (or none): every rank must start at the same step; a differing rank is named. */
  started(step: number): Promise<void>;
}

export interface RunOptions {
  readonly backend: Backend;
  /** Folder that the config's paths (data.path, data.index, checkpoint.dir) are relative to (the config file's). */
  readonly baseDir: string;
  /** Stop at this step (for measuring; the schedule still follows train.iters). */
  readonly maxIters?: number;
  /** Continue from the newest good checkpoint in checkpoint.dir (none there: start at step 0). */
  readonly resume?: boolean;
  /** Stops the run after the current step (it still checkpoints and waits for the write). */
  readonly signal?: AbortSignal;
  readonly report?: (event: RunEvent) => void;
  /** Warnings (a checkpoint skipped on resume; default console.warn). */
  readonly warn?: (message: string) => void;
  /** One rank of a data-parallel job (see RunParallel); absent: a single process. */
  readonly parallel?: RunParallel;
}

export interface RunResult {
  /** The steps this process took (after the resumed step, if any). */
  readonly steps: readonly StepStats[];
  /** Held-out loss of this process's last evaluation, and its step (absent when none ran: stopped before the first). */
  readonly valLoss?: number;
  readonly valStep?: number;
  readonly params: number;
}

function buildModel(cfg: TrainConfig, vocabSize: number, backend: Backend): TrainableModel {
  const c = trainModelConfig(cfg.model, vocabSize);
  return c.arch === "gpt2" ? new Gpt2(c, backend) : new Llama(c, backend, { foldNorms: false, fuseQkv: false });
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const report = opts.report ?? (() => {});
  const warn = opts.warn ?? console.warn;
  const ck = cfg.checkpoint && { ...cfg.checkpoint, dir: configPath(cfg.checkpoint.dir, opts.baseDir) };
  if (opts.resume && !ck) throw new Error("resume: the config has no checkpoint section (checkpoint.dir) to resume from");
  if (ck && !opts.resume) {
    const newest = listCheckpoints(ck.dir).steps[0];
    if (newest) throw new Error(`checkpoint.dir ${ck.dir} already holds checkpoints (newest: step ${newest.step}); resume that run (--resume), or name another checkpoint.dir`);
  }
  const data = await openRunData(cfg, opts.baseDir);
  let closeMemory = () => {};
  try {
    const sample = cfg.eval.sample;
    if (sample && !data.codec) throw new Error("eval.sample: the shards' vocabulary is a tokenizer file; name it in eval.sample.tokenizer (its tokenizer.json) so samples can be encoded and decoded");
    const backend = accountedBackend(opts.backend);
    const whole = buildModel(cfg, data.vocabSize, backend);
    await initParameters(whole, { seed: cfg.train.seed });
    const par = opts.parallel;
    const model = par?.model ? await par.model(whole) : whole;
    await par?.prepare(model, { config: cfg, maxIters: opts.maxIters ?? null });
    const o = cfg.optimizer;
    const schedule = { ...cfg.schedule, lr: o.lr };
    // NOTE: ZeRO-3's trainer takes no precision or memory options (train_parallel.ts refuses configs that set them).
    const zero3 = isParameterSharding(par?.trainer?.sharding);
    const trainer = makeTrainer(model, par ? par.batches(data.train) : data.train, {
      schedule,
      ...(o.kind === "sgd"
        ? { sgd: { momentum: o.momentum, dampening: o.dampening, nesterov: o.nesterov, weightDecay: o.weightDecay } }
        : { adamw: { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay } }),
      gradAccumSteps: cfg.train.gradAccumSteps,
      jit: cfg.train.jit,
      ...(cfg.train.maxGradNorm > 0 ? { maxGradNorm: cfg.train.maxGradNorm } : {}),
      ...(zero3 ? {} : { precision: { precision: cfg.precision, ...cfg.precisionOptions }, memory: trainingMemoryOptions(cfg.memory, opts.baseDir) }),
      ...(par?.gradientHook ? { gradientHook: par.gradientHook } : {}),
      ...par?.trainer,
    });
    closeMemory = () => trainer.memory.close();
    const reportMemory = () => {
      const memory = trainer.memory.snapshot();
      if (memory) report({ kind: "memory", step: trainer.step, memory });
    };
    report({ kind: "start", arch: cfg.model.arch, params: trainer.layout.size, data: data.describe, backend: opts.backend.name, precision: trainer.precision.path });

    const group = ck && par?.checkpointGroup;
    if (ck && opts.resume && group) {
      // NOTE: every rank agrees on the newest intact checkpoint and reads its own part of it (any world size wrote it).
      const dir = await resumeSharded(ck.dir, group, warn);
      if (dir) {
        const r = await loadShardedCheckpoint(dir, trainer, cfg.model.arch);
        data.train.restore(r[data.stateField]);
        report({ kind: "resume", step: r.step, dir });
      }
    } else if (ck && opts.resume) {
      const ws = par?.wholeState;
      const expect = ws ? { architecture: cfg.model.arch, params: ws.layout.map((s) => ({ name: s.name, shape: s.shape })) } : trainerSignature(cfg.model.arch, trainer.layout);
      const saved = resumeFromLatest(ck.dir, { expect, warn });
      if (saved) {
        const where = `checkpoint ${ck.dir} (step ${saved.step})`;
        const state = fromCheckpointState(saved, where);
        trainer.loadState(ws ? ws.part(state) : state);
        data.train.restore(saved[data.stateField]);
        report({ kind: "resume", step: saved.step, dir: ck.dir });
      }
    }
    await par?.started(trainer.step);
    // NOTE: in a data-parallel job every rank holds the same state; one (par.writes) writes it.
    const writes = par?.writes ?? true;
    const checkpointer = ck && writes && !group ? new Checkpointer(ck.dir, { keepLast: ck.keepLast, keepEvery: ck.keepEvery, warn }) : undefined;
    let reported = checkpointer?.lastSaved;
    const reportSaved = () => {
      if (!checkpointer || checkpointer.lastSaved === reported) return;
      reported = checkpointer.lastSaved;
      report({ kind: "checkpoint", step: Number(/(\d+)$/.exec(reported!)![1]), dir: reported! });
    };
    let savedStep = trainer.step;
    // NOTE: with a wholeState every rank takes part in a save (the gather), though one writes.
    const saves = checkpointer !== undefined || group !== undefined || (ck !== undefined && par?.wholeState !== undefined);
    const save = async () => {
      savedStep = trainer.step;
      const meta = {
        architecture: cfg.model.arch,
        config: cfg as unknown as Json,
        rng: data.stateField === "rng" ? data.train.state() : { seed: cfg.train.seed },
        loader: data.stateField === "loader" ? data.train.state() : null,
      };
      if (group) {
        // NOTE: a collective, not in the background: its commit needs every rank's part written.
        const dir = await saveShardedCheckpoint(ck.dir, group, trainer, meta, { keepLast: ck.keepLast, keepEvery: ck.keepEvery, warn });
        if (writes) report({ kind: "checkpoint", step: savedStep, dir });
        return;
      }
      const whole = par?.wholeState ? await par.wholeState.gather(await trainer.state()) : undefined;
      if (!checkpointer) return;
      const state = toCheckpointState(whole ?? (await trainer.state()), meta);
      // NOTE: state() read the tensors back into fresh arrays that nothing else holds: no second copy.
      await checkpointer!.save(state, { owned: true });
      // save() waited for the write before it (one in flight at most): that one is durable now.
      reportSaved();
    };

    const evaluate = async () => {
      data.rewindVal();
      let sum = 0;
      for (let i = 0; i < cfg.eval.batches; i++) sum += par?.evalLoss ? await par.evalLoss(data.val, i) : await trainer.evalLoss(data.val, i);
      return sum / cfg.eval.batches;
    };
    const last = Math.min(cfg.train.iters, opts.maxIters ?? Infinity);
    const steps: StepStats[] = [];
    let val: { loss: number; step: number } | undefined;
    try {
      while (trainer.step < last) {
        // NOTE: a macrotask turn before each step: a step's awaits are mostly microtasks, and without this
        // turn neither a signal (Ctrl-C) nor the checkpoint write's file I/O would progress until the run ends.
        await new Promise<void>((resolve) => nextTurn(resolve));
        if (opts.signal?.aborted) break;
        const own = await trainer.trainStep();
        const s = par ? { ...own, loss: await par.meanLoss(own.loss) } : own;
        steps.push(s);
        if (!Number.isFinite(s.loss)) throw new Error(`step ${s.step}: the loss is ${s.loss} (diverged; lower optimizer.lr?)`);
        // NOTE: a skipped fp16 step is reported under the step it retries (the retry's report replaces it).
        report({ kind: "step", step: s.step + 1, iters: cfg.train.iters, loss: s.loss, lr: s.lr, gradNorm: s.gradNorm, ms: s.ms, lossScale: s.lossScale, skipped: s.skipped });
        if (s.skipped) continue;
        reportSaved();
        if (trainer.step % cfg.eval.interval === 0 || trainer.step === last) {
          val = { loss: await evaluate(), step: trainer.step };
          data.rewindVal();
          const moe = await moeEvalStats(trainer.model, await data.val.batch(0, 0), data.val.batchSize, data.val.blockSize);
          report({ kind: "eval", step: trainer.step, loss: val.loss, batches: cfg.eval.batches, ...(moe ? { moe } : {}) });
          reportMemory();
          if (sample) {
            const text = await sampleText(trainer.model, data.codec!, cfg.model.blockSize, { ...sample, seed: cfg.train.seed });
            report({ kind: "sample", step: trainer.step, prompt: sample.prompt, text });
          }
        }
        if (ck && saves && trainer.step % ck.every === 0) await save();
      }
      if (saves && savedStep !== trainer.step) await save();
    } catch (err) {
      // NOTE: on a failure too: a checkpoint already being written is finished, not left half-written; a
      // failure of that write is only a warning here, so it cannot hide the error that ended the run.
      await checkpointer?.flush().catch((e: Error) => console.warn(`warning: the last checkpoint write failed too: ${e.message}`));
      throw err;
    }
    await checkpointer?.flush();
    reportSaved();
    // NOTE: a stopped run is not exported: its model is not the final one (its checkpoint is; `kiln export` takes it).
    if (cfg.export && writes && !opts.signal?.aborted) {
      const e = exportTrainState(cfg, opts.baseDir, await trainer.state());
      report({ kind: "export", step: trainer.step, dir: e.dir, files: e.files });
    }
    return { steps, params: trainer.layout.size, ...(val ? { valLoss: val.loss, valStep: val.step } : {}) };
  } finally {
    closeMemory();
    await data.close();
  }
}
