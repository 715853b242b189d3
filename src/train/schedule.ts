// schedule.ts: learning-rate schedules as pure functions of the step (0-based), so a resumed run
// needs no schedule state. "cosine" is nanoGPT's get_lr: linear warmup to lr over warmupSteps, cosine
// decay to minLr at decaySteps, minLr after; "constant" is lr throughout.

export type LrSchedule =
  | { readonly kind: "constant"; readonly lr: number }
  | { readonly kind: "cosine"; readonly lr: number; readonly minLr: number; readonly warmupSteps: number; readonly decaySteps: number };

export function checkSchedule(s: LrSchedule): LrSchedule {
  if (!(s.lr > 0)) throw new Error(`lr schedule: lr must be > 0, got ${s.lr}`);
  if (s.kind === "cosine") {
    if (!(s.minLr >= 0 && s.minLr <= s.lr)) throw new Error(`lr schedule: minLr must be in [0, lr], got ${s.minLr}`);
    if (!(Number.isInteger(s.warmupSteps) && s.warmupSteps >= 0)) throw new Error(`lr schedule: warmupSteps must be a non-negative integer, got ${s.warmupSteps}`);
    if (!(Number.isInteger(s.decaySteps) && s.decaySteps > s.warmupSteps)) throw new Error(`lr schedule: decaySteps (${s.decaySteps}) must be an integer above warmupSteps (${s.warmupSteps})`);
  }
  return s;
}

/** The learning rate at `step`. */
export function learningRate(s: LrSchedule, step: number): number {
  if (s.kind === "constant") return s.lr;
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (step >= s.decaySteps) return s.minLr;
  const ratio = (step - s.warmupSteps) / (s.decaySteps - s.warmupSteps);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - s.minLr);
}
