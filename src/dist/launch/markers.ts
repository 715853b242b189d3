// markers.ts: the few lines a rank writes for its launcher (not for people) on stderr: that a rank went
// silent (so the launcher names the hung rank, not the one that noticed), and a step taken (so the
// launcher can time a recovery: failure to first new step). One line of JSON after a fixed prefix, written
// only when the launcher asked for them (KILN_RESTART_COUNT is set); the launcher takes them out of
// the output it passes on. It owns the format on both sides; nothing else.

export const MARKER_PREFIX = "kiln-launch-marker: ";

export type Marker =
  | { readonly kind: "silent"; readonly rank: number; readonly silentMs: number; readonly by: number }
  | { readonly kind: "step"; readonly step: number; readonly rank: number };

export function markerLine(m: Marker): string {
  return `${MARKER_PREFIX}${JSON.stringify(m)}\n`;
}

/** The marker on a line of a rank's output, or undefined for an ordinary line (or a malformed marker). */
export function parseMarker(line: string): Marker | undefined {
  if (!line.startsWith(MARKER_PREFIX)) return undefined;
  try {
    const m = JSON.parse(line.slice(MARKER_PREFIX.length)) as Marker;
    if (m.kind === "silent" && Number.isInteger(m.rank) && typeof m.silentMs === "number") return m;
    if (m.kind === "step" && Number.isInteger(m.step)) return m;
  } catch {
    // not one of ours after all: passed on as output
  }
  return undefined;
}

/** Restarts so far, from KILN_RESTART_COUNT (set by kiln launch; torchelastic's TORCHELASTIC_RESTART_COUNT too); undefined when not launched so. */
export function restartCount(env: Readonly<Record<string, string | undefined>> = process.env): number | undefined {
  const text = env.KILN_RESTART_COUNT;
  if (text === undefined || text === "") return undefined;
  if (!/^\d+$/.test(text)) throw new Error(`KILN_RESTART_COUNT=${JSON.stringify(text)} is not a whole number`);
  return Number(text);
}
