// errors.ts: the tracking layer's errors a person sees: a runs database that cannot be used, and a
// run that is not in it (with the closest ids and names, which is what a typo usually needs).

/** A runs database that cannot be used: not SQLite, a newer schema, unreadable. Names the file. */
export class RunsDbError extends Error {}

/** A run id or name that matches no run; the message lists close matches. */
export class UnknownRunError extends Error {
  constructor(readonly query: string, readonly file: string, readonly suggestions: readonly string[]) {
    const hint = suggestions.length > 0 ? ` (did you mean ${suggestions.join(", ")}?)` : " (kiln runs list shows the runs)";
    super(`no run '${query}' in ${file}${hint}`);
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Up to `max` candidates close to `query`: sharing a prefix, or within a third of its length in edits. */
export function closeMatches(query: string, candidates: readonly string[], max = 3): string[] {
  const q = query.toLowerCase();
  const limit = Math.max(2, Math.floor(q.length / 3));
  return [...new Set(candidates)]
    .map((c) => ({ c, d: c.toLowerCase().startsWith(q) || q.startsWith(c.toLowerCase()) ? 0 : editDistance(q, c.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, max)
    .map((x) => x.c);
}
