// debug.ts: KILN_DEBUG=1..4 turns on what realize prints: 1 the schedule, 2 generated source,
// 3 every launch, 4 per-launch timings (synchronizing after each). Works where `process` does not exist.

let level: number | undefined;

export function debugLevel(): number {
  if (level === undefined) {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    level = Number(env?.KILN_DEBUG ?? 0) || 0;
  }
  return level;
}

/** Override KILN_DEBUG at run time (tests, the browser). */
export function setDebugLevel(n: number): void {
  level = n;
}

export function debugLog(msg: string): void {
  console.error(`[kiln] ${msg}`);
}
