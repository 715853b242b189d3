// pipeline_schedule.ts: the order in which one pipeline stage runs its micro-batches' forwards and
// backwards, as plain data. 1F1B (PipeDream-flush, Megatron's default): stage s of p first runs
// min(p - s - 1, m) warm-up forwards, then alternates one forward and one backward, then runs the
// cool-down backwards. A stage never holds more than p - s micro-batches' activations (GPipe, all
// forwards then all backwards, holds m), and the step's bubble is the same as GPipe's,
// (p - 1) / (m + p - 1) of each stage's time when every stage costs the same.
// It owns no communication: pipeline.ts walks the list, receiving and sending around each action.
// NOTE: no interleaved 1F1B (v model chunks per stage). It cuts the bubble by v but sends v times as
// many activations; measured here the sends (host round trips) already cost more of a step than the
// half of the bubble v = 2 would remove, and more micro-batches shrink the bubble without more sends
// per micro-batch. See docs/distributed.md "Pipeline parallel".

export interface PipelineAction {
  readonly kind: "forward" | "backward";
  readonly micro: number;
}

/** Stage `stage` of `stages`' actions for `micro` micro-batches, in 1F1B order. */
export function oneForwardOneBackward(stages: number, stage: number, micro: number): PipelineAction[] {
  if (!(Number.isInteger(stages) && stages >= 1)) throw new Error(`1F1B schedule: stages must be an integer >= 1, got ${stages}`);
  if (!(Number.isInteger(stage) && stage >= 0 && stage < stages)) throw new Error(`1F1B schedule: stage must be an integer from 0 to ${stages - 1}, got ${stage}`);
  if (!(Number.isInteger(micro) && micro >= 1)) throw new Error(`1F1B schedule: micro-batches must be an integer >= 1, got ${micro}`);
  const warmup = Math.min(stages - stage - 1, micro);
  const out: PipelineAction[] = [];
  let [f, b] = [0, 0];
  for (; f < warmup; f++) out.push({ kind: "forward", micro: f });
  for (; f < micro; f++, b++) out.push({ kind: "forward", micro: f }, { kind: "backward", micro: b });
  for (; b < micro; b++) out.push({ kind: "backward", micro: b });
  return out;
}

/** The most micro-batches whose activations a stage holds at once under `actions` (forwards not yet matched by their backward). */
export function peakInFlight(actions: readonly PipelineAction[]): number {
  let [now, peak] = [0, 0];
  for (const a of actions) {
    now += a.kind === "forward" ? 1 : -1;
    peak = Math.max(peak, now);
  }
  return peak;
}

/**
 * The idle share of each stage when `micro` micro-batches run in 1F1B order and stage s's forward takes
 * forwardMs[s] and its backward backwardMs[s], with free communication: each action starts when its
 * stage is free and its input is ready (the previous stage's forward, the next stage's backward); the
 * step lasts until the last action ends, and a stage's idle share is 1 - its busy time / the step.
 * With equal stages this is the planner's (p - 1) / (m + p - 1); with measured unequal ones it is the
 * bubble the partition leaves, the baseline a measured step is compared with (bench/pipeline_bubble.ts).
 */
export function simulateOneForwardOneBackward(forwardMs: readonly number[], backwardMs: readonly number[], micro: number): { stepMs: number; idleShare: number[] } {
  const p = forwardMs.length;
  if (backwardMs.length !== p) throw new Error(`simulate 1F1B: ${p} forward times but ${backwardMs.length} backward times`);
  const lists = [...Array(p).keys()].map((s) => oneForwardOneBackward(p, s, micro));
  const fEnd = [...Array(p)].map(() => new Array<number>(micro).fill(NaN));
  const bEnd = [...Array(p)].map(() => new Array<number>(micro).fill(NaN));
  const next = new Array<number>(p).fill(0);
  const free = new Array<number>(p).fill(0);
  let left = lists.reduce((n, l) => n + l.length, 0);
  while (left > 0) {
    let moved = false;
    for (let s = 0; s < p; s++) {
      const a = lists[s]![next[s]!];
      if (!a) continue;
      const ready = a.kind === "forward" ? (s === 0 ? 0 : fEnd[s - 1]![a.micro]!) : s === p - 1 ? fEnd[s]![a.micro]! : bEnd[s + 1]![a.micro]!;
      if (Number.isNaN(ready)) continue;
      const end = Math.max(free[s]!, ready) + (a.kind === "forward" ? forwardMs[s]! : backwardMs[s]!);
      (a.kind === "forward" ? fEnd : bEnd)[s]![a.micro] = end;
      free[s] = end;
      next[s]!++;
      left--;
      moved = true;
    }
    if (!moved) throw new Error("simulate 1F1B: the schedule deadlocked (a bug in oneForwardOneBackward)");
  }
  const stepMs = Math.max(...free);
  return { stepMs, idleShare: forwardMs.map((f, s) => 1 - (micro * (f + backwardMs[s]!)) / stepMs) };
}
