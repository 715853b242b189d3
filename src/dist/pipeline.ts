// pipeline.ts: pipeline parallel training. The model's pieces (embedding, blocks, head) are cut into
// contiguous stages by measured cost (pipeline_costs.ts, pipeline_partition.ts), one stage per rank of
// a pipeline group; each step's micro-batches run through the stages in 1F1B order
// (pipeline_schedule.ts): a stage receives its input activation from the previous stage, runs its
// forward, sends the output on, and later receives the output's gradient, runs the backward (autograd's
// gradients() from the output with that gradient as the seed: the vector-Jacobian product, no surrogate
// loss needed) and sends its input's gradient back. Forward and backward are each captured once with
// jit and replayed (stage_step.ts); the backward recomputes its forward from the saved input.
// The trainer trains the stage (PipelineStage) as its model, through two generic hooks it never learns
// the world size from: gradientSource (this schedule, returning the stage's gradients summed over the
// micro-batches) and hostGradientNorm (the squared norm summed over the stages, so clipping sees the whole
// model's norm). A tied head's copy of the token embedding gets the sum of both stages' gradients, so
// both copies take the same update, and only the first stage counts it in the norm.
// The group is any Communicator-shaped object with its own rank and size (a pipeline group of a 4D
// mesh), not necessarily the world. Activations travel as host Float32Arrays (Communicator send/recv).

import type { Tensor } from "../index.js";
import { tensor } from "../index.js";
import type { Communicator } from "./comm.js";
import type { BatchesOf } from "./data_parallel.js";
import { agreeOnConfig } from "./agree_config.js";
import { agreedCosts, timePieces } from "./pipeline_costs.js";
import { partition, type StageRange } from "./pipeline_partition.js";
import { oneForwardOneBackward } from "./pipeline_schedule.js";
import { pieceCount, pieceParameterNames, PipelineStage, type PipelineModel } from "./pipeline_stage.js";
import { StageStep } from "./stage_step.js";

/** Steps whose timing a pipeline keeps (a long run must not grow without bound). */
const MAX_TIMINGS = 1000;

/** What a pipeline needs of its group: its place in it, point-to-point messages, and two collectives. */
export type PipelineGroup = Pick<Communicator, "rank" | "size" | "send" | "recv" | "allReduce" | "allGather">;

export interface PipelineOptions {
  /** Rows and tokens of every micro-batch (the data's batchSize and blockSize). */
  readonly batchSize: number;
  readonly blockSize: number;
  /** How to cut the pieces: "measure" (default: time each piece, balance the stages), or each stage's [start, end). */
  readonly partition?: "measure" | readonly StageRange[];
  /** Anything else every stage must agree on (the trainer's options): checked with the model's layout. */
  readonly config?: unknown;
}

/**
 * One step's time on this stage: the whole step (its schedule, the shared-weight sum and the loss's
 * all-reduce, which ends together on every stage), the part spent computing forwards and backwards,
 * and the rest (waiting for neighbours: the bubble, plus communication).
 */
export interface StageTiming {
  readonly wallMs: number;
  readonly busyMs: number;
  readonly forwardMs: number;
  readonly backwardMs: number;
  /** 1 - busy / wall: this stage's bubble (plus communication) share of the step. */
  readonly idleShare: number;
}

export interface PipelineParallel {
  /** This rank's stage: give it to the Trainer as its model. */
  readonly stage: PipelineStage;
  /** Every stage's pieces [start, end) (0 = embedding, 1..L = blocks, L + 1 = head). */
  readonly ranges: readonly StageRange[];
  /** Each piece's measured ms, the fastest over the group (when partition was "measure"). */
  readonly costs: readonly number[] | undefined;
  /** Give them to the Trainer (TrainerOptions.gradientSource and hostGradientNorm). */
  readonly gradientSource: (request: { step: number; microBatches: number; data: BatchesOf<unknown> }) => Promise<{ loss: number; grads: Map<string, Float32Array> }>;
  readonly hostGradientNorm: { counted: (name: string) => boolean; sum: (squares: number) => Promise<number> };
  /** Each step's timing on this stage, in order (the last MAX_TIMINGS steps). */
  readonly timings: StageTiming[];
}

/** Sets up this rank's stage: checks that every stage agrees on the model and config, then partitions. */
export async function pipelineParallel(group: PipelineGroup, model: PipelineModel, opts: PipelineOptions): Promise<PipelineParallel> {
  const { batchSize: b, blockSize: t } = opts;
  const layout = [...model.parameters()].map(([name, x]) => [name, x.dtype, x.shape]);
  await agreeOnConfig(group, "pipeline parallel", JSON.stringify({ layout, config: model.config, batch: [b, t], partition: opts.partition ?? "measure", stages: group.size, extra: opts.config ?? null }));
  const n = pieceCount(model);
  let costs: number[] | undefined;
  let ranges: StageRange[];
  if (opts.partition === undefined || opts.partition === "measure") {
    costs = await agreedCosts(group, await timePieces(model, b, t));
    ranges = partition(costs, group.size);
  } else {
    ranges = [...opts.partition];
    checkRanges(ranges, n, group.size);
  }
  const stage = new PipelineStage(model, ranges[group.rank]!);
  const holders = sharedHolders(pieceParameterNames(model), ranges);
  const timings: StageTiming[] = [];
  const run = new StageRunner(group, model, stage, holders, b, t, timings);
  return {
    stage,
    ranges,
    costs,
    gradientSource: (request) => run.step(request),
    hostGradientNorm: {
      // NOTE: a weight several stages hold (a tied embedding) is counted once, by the first of them.
      counted: (name) => (holders.get(name)?.[0] ?? group.rank) === group.rank,
      sum: async (squares) => (await group.allReduce(Float32Array.of(squares), "sum"))[0]!,
    },
    timings,
  };
}

/** Runs one step's schedule on this stage. */
class StageRunner {
  private readonly prev: number;
  private readonly next: number;
  private readonly kernels: StageStep;

  constructor(
    private readonly group: PipelineGroup,
    private readonly model: PipelineModel,
    private readonly stage: PipelineStage,
    private readonly holders: ReadonlyMap<string, readonly number[]>,
    private readonly b: number,
    private readonly t: number,
    private readonly timings: StageTiming[],
  ) {
    [this.prev, this.next] = [group.rank - 1, group.rank + 1];
    this.kernels = new StageStep(model, stage, b, t);
  }

  async step({ step, microBatches: m, data }: { step: number; microBatches: number; data: BatchesOf<unknown> }): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { b, t, stage, group } = this;
    if (data.batchSize !== b || data.blockSize !== t) {
      throw new Error(`pipeline parallel on rank ${group.rank}: the data's micro-batches are (${data.batchSize}, ${data.blockSize}), the pipeline was set up for (${b}, ${t})`);
    }
    const backend = [...stage.parameters().values()][0]!.backend;
    const rows = b * t;
    const dim = this.model.config.dim;
    const saved = new Map<number, StageInputs>();
    const acc = stage.names.map((name) => new Float32Array(stage.parameters().get(name)!.numel));
    let lossSum = 0;
    let [forwardMs, backwardMs] = [0, 0];
    const t0 = performance.now();
    const ids = (a: Int32Array) => tensor(a, { backend, dtype: "i32", shape: [rows] });
    const receive = async (from: number, what: string, want: number) => {
      const got = await group.recv(from);
      if (got.length !== want) throw new Error(`pipeline parallel on rank ${group.rank}: stage ${from} sent ${got.length} values as ${what}, expected ${want} (${rows} rows x ${dim})`);
      return tensor(got, { backend, dtype: "f32", shape: [rows, dim] });
    };
    for (const a of oneForwardOneBackward(group.size, group.rank, m)) {
      if (a.kind === "forward") {
        const batch = stage.isFirst || stage.isLast ? await data.batch(step, a.micro) : undefined;
        const input = stage.isFirst ? ids(batch!.inputs) : await receive(this.prev, `micro-batch ${a.micro}'s activation`, rows * dim);
        const inputs = { input, targets: stage.isLast ? ids(batch!.targets) : undefined };
        saved.set(a.micro, inputs);
        const c0 = performance.now();
        const out = await this.kernels.forward(inputs);
        forwardMs += performance.now() - c0;
        // NOTE: the loss sums in f32 in micro-batch order, as the trainer's own step does on the device.
        if (stage.isLast) lossSum = Math.fround(lossSum + out[0]!);
        else await group.send(out, this.next);
      } else {
        const inputs = saved.get(a.micro)!;
        saved.delete(a.micro);
        // NOTE: the last stage seeds with 1 / m (each micro-batch's loss weighted as the trainer's own step weights it).
        const seed = stage.isLast ? tensor(Float32Array.of(1 / m), { backend, dtype: "f32", shape: [] }) : await receive(this.next, `micro-batch ${a.micro}'s output gradient`, rows * dim);
        const c0 = performance.now();
        const { grads, inputGrad } = await this.kernels.backward(inputs, seed);
        // NOTE: summed on the host in micro-batch order: the same f32 sums as the trainer's device adds.
        grads.forEach((g, i) => {
          const into = acc[i]!;
          for (let j = 0; j < into.length; j++) into[j] = into[j]! + g[j]!;
        });
        backwardMs += performance.now() - c0;
        // NOTE: a replay binds its inputs only while it runs, so they go now rather than when collected.
        for (const x of [inputs.input, inputs.targets, seed]) x?.dispose();
        if (inputGrad) await group.send(inputGrad, this.prev);
      }
    }
    const grads = new Map<string, Float32Array>();
    stage.names.forEach((name, i) => grads.set(name, acc[i]!));
    await this.sumShared(grads);
    // NOTE: every stage reports the last stage's mean loss (one all-reduce of a scalar), so any rank can log it.
    const loss = (await group.allReduce(Float32Array.of(stage.isLast ? Math.fround(lossSum / m) : 0), "sum"))[0]!;
    const [wallMs, busyMs] = [performance.now() - t0, forwardMs + backwardMs];
    this.timings.push({ wallMs, busyMs, forwardMs, backwardMs, idleShare: 1 - busyMs / wallMs });
    if (this.timings.length > MAX_TIMINGS) this.timings.shift();
    return { loss, grads };
  }

  /** Every weight several stages hold (a tied embedding): each holder's gradient becomes the sum over holders, in stage order. */
  private async sumShared(grads: Map<string, Float32Array>): Promise<void> {
    const me = this.group.rank;
    for (const [name, stages] of this.holders) {
      if (!stages.includes(me)) continue;
      const mine = grads.get(name)!;
      for (const s of stages) if (s !== me) await this.group.send(mine, s);
      const parts = await Promise.all(stages.map((s) => (s === me ? mine : this.group.recv(s))));
      const sum = Float32Array.from(parts[0]!);
      for (const p of parts.slice(1)) {
        if (p.length !== sum.length) throw new Error(`pipeline parallel on rank ${me}: the shared weight '${name}' has ${p.length} gradient values on another stage, ${sum.length} here`);
        for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + p[i]!;
      }
      grads.set(name, sum);
    }
  }
}

/** One micro-batch's inputs to this stage: token ids or the previous stage's activation, and on the last stage the targets. */
interface StageInputs {
  readonly input: Tensor;
  readonly targets: Tensor | undefined;
}

/** Parameters read by pieces of more than one stage (a tied embedding and head), with those stages in order. */
function sharedHolders(pieceNames: readonly string[][], ranges: readonly StageRange[]): Map<string, number[]> {
  const byName = new Map<string, number[]>();
  ranges.forEach(([start, end], s) => {
    for (const name of new Set(pieceNames.slice(start, end).flat())) byName.set(name, [...(byName.get(name) ?? []), s]);
  });
  return new Map([...byName].filter(([, stages]) => stages.length > 1));
}

function checkRanges(ranges: readonly StageRange[], pieces: number, stages: number): void {
  const ok = ranges.length === stages && ranges.every(([a, b], i) => Number.isInteger(a) && Number.isInteger(b) && a < b && a === (i === 0 ? 0 : ranges[i - 1]![1]) && (i < stages - 1 || b === pieces));
  if (!ok) throw new Error(`pipeline parallel: partition ${JSON.stringify(ranges)} must give each of the ${stages} stages a non-empty run of the ${pieces} pieces, in order, covering all of them`);
}
