// launch_profile.ts: KILN_PROFILE=1 times every launch a replayed jit step makes (the training loop's
// steady state, where KILN_DEBUG=4 sees nothing, as replay skips realize) and prints, at exit, the time
// per launch name summed over the run, largest first. Routines are named by the first line of their
// source ("cpu routine matmul 1x(768x128 @ 128x512) ..."), as their executable names are hashes.
// NOTE: the time is the host time of backend.launch: exact on cpu (launches run synchronously), only the
// encoding time on webgpu (which queues work).

import type { Backend, Executable } from "./backend.js";

let enabled: boolean | undefined;
const totals = new Map<string, { ms: number; calls: number }>();
const labels = new WeakMap<Executable, string>();

export function profilingLaunches(): boolean {
  if (enabled === undefined) {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    enabled = env?.KILN_PROFILE === "1";
    const proc = (globalThis as { process?: { on?: (ev: string, fn: () => void) => void } }).process;
    if (enabled) proc?.on?.("exit", () => console.error(launchProfileReport()));
  }
  return enabled;
}

function label(backend: Backend, exe: Executable): string {
  let l = labels.get(exe);
  if (l === undefined) {
    const first = backend.source?.(exe)?.split("\n", 1)[0] ?? "";
    const said = first.startsWith("// ") && !first.startsWith("// no ") ? first.slice(3) : undefined;
    l = said === undefined ? exe.name : said.startsWith(exe.name) ? said : `${exe.name.split("_")[0]} ${said}`;
    if (/storeBlock|storeOuter/.test(backend.source?.(exe) ?? "")) l += " (+epilogue)";
    labels.set(exe, l);
  }
  return l;
}

/** Turns the profile on or off at run time (tests; a process that sets it up itself). */
export function setLaunchProfiling(on: boolean): void {
  enabled = on;
}

/** backend.launch, timed into the profile. */
export function timedLaunch(backend: Backend, exe: Executable, bufs: Parameters<Backend["launch"]>[1]): void {
  const t0 = performance.now();
  backend.launch(exe, bufs);
  addToProfile(label(backend, exe), performance.now() - t0);
}

/** Adds `ms` to the profile's row `key` (host work a replay does between launches: collectives). */
export function addToProfile(key: string, ms: number): void {
  const t = totals.get(key);
  if (t) (t.ms += ms), t.calls++;
  else totals.set(key, { ms, calls: 1 });
}

/** Forgets what was timed so far. */
export function resetLaunchProfile(): void {
  totals.clear();
}

/** The table printed at exit: ms and share per launch name, largest first. */
export function launchProfileReport(): string {
  const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, t]) => s + t.ms, 0);
  const lines = [`[kiln] launch profile (replayed steps): ${total.toFixed(1)} ms in ${rows.reduce((s, [, t]) => s + t.calls, 0)} launches`];
  for (const [name, t] of rows) lines.push(`${t.ms.toFixed(1).padStart(9)} ms ${((100 * t.ms) / total).toFixed(1).padStart(5)}% ${String(t.calls).padStart(6)}x  ${name}`);
  return lines.join("\n");
}
