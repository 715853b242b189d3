// schedule.ts: learning-rate schedules as pure functions of the step (0-based), so a resumed run
// needs no schedule state. Every schedule but "constant" warms up linearly to lr over warmupSteps
// (nanoGPT's get_lr: lr (step + 1) / (warmupSteps + 1)), then:
//   "cosine": cosine decay to minLr at decaySteps (nanoGPT's), minLr after;
//   "linear": straight-line decay to minLr at decaySteps, minLr after;
//   "wsd" (warmup-stable-decay): lr until decayStart, then straight-line decay to minLr at decaySteps.
// "constant" is lr throughout.

export type LrSchedule =
  | { readonly kind: "constant"; readonly lr: number }
  | { readonly kind: "cosine" | "linear"; readonly lr: number; readonly minLr: number; readonly warmupSteps: number; readonly decaySteps: number }
  | { readonly kind: "wsd"; readonly lr: number; readonly minLr: number; readonly warmupSteps: number; readonly decayStart: number; readonly decaySteps: number };

const isStep = (n: number) => Number.isInteger(n) && n >= 0;

export function checkSchedule(s: LrSchedule): LrSchedule {
  if (!(s.lr > 0)) throw new Error(`lr schedule: lr must be > 0, got ${s.lr}`);
  if (s.kind === "constant") return s;
  if (!(s.minLr >= 0 && s.minLr <= s.lr)) throw new Error(`lr schedule: minLr must be in [0, lr], got ${s.minLr}`);
  if (!isStep(s.warmupSteps)) throw new Error(`lr schedule: warmupSteps must be a non-negative integer, got ${s.warmupSteps}`);
  const start = s.kind === "wsd" ? s.decayStart : s.warmupSteps;
  if (s.kind === "wsd" && !(isStep(s.decayStart) && s.decayStart >= s.warmupSteps)) {
    throw new Error(`lr schedule: decayStart (${s.decayStart}) must be an integer at or above warmupSteps (${s.warmupSteps})`);
  }
  if (!(Number.isInteger(s.decaySteps) && s.decaySteps > start)) {
    throw new Error(`lr schedule: decaySteps (${s.decaySteps}) must be an integer above ${s.kind === "wsd" ? `decayStart (${start})` : `warmupSteps (${start})`}`);
  }
  return s;
}

/** The learning rate at `step`. */
export function learningRate(s: LrSchedule, step: number): number {
  if (s.kind === "constant") return s.lr;
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (step >= s.decaySteps) return s.minLr;
  const start = s.kind === "wsd" ? s.decayStart : s.warmupSteps;
  if (step < start) return s.lr;
  const ratio = (step - start) / (s.decaySteps - start);
  const coeff = s.kind === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * ratio)) : 1 - ratio;
  return s.minLr + coeff * (s.lr - s.minLr);
}
