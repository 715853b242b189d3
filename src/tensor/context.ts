// context.ts: the switches ops read while building graphs: whether gradients are recorded and
// whether named routines (hand-written kernels) may be used, or their primitive references instead.

let gradEnabled = true;
let routinesEnabled = true;

export const isGradEnabled = (): boolean => gradEnabled;
export const areRoutinesEnabled = (): boolean => routinesEnabled;

function scoped<T>(set: (v: boolean) => boolean, value: boolean, fn: () => T): T {
  const before = set(value);
  try {
    return fn();
  } finally {
    set(before);
  }
}

/** Build graphs inside fn without recording gradients (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  return scoped((v) => { const b = gradEnabled; gradEnabled = v; return b; }, false, fn);
}

export function enableGrad<T>(fn: () => T): T {
  return scoped((v) => { const b = gradEnabled; gradEnabled = v; return b; }, true, fn);
}

/** Build graphs inside fn with (true) or without (false) hand-written routines. */
export function withRoutines<T>(enabled: boolean, fn: () => T): T {
  return scoped((v) => { const b = routinesEnabled; routinesEnabled = v; return b; }, enabled, fn);
}
