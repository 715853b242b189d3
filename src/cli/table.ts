// table.ts: plain-text tables and key/value blocks for people reading a terminal. Formatting only:
// callers decide what goes in the cells. No colours, so output stays the same in logs and pipes.

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  return all
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd())
    .join("\n");
}

/** `key  value` lines with the keys aligned, each line indented by `indent` spaces. */
export function formatPairs(pairs: Readonly<Record<string, string>>, indent: number): string {
  const keys = Object.keys(pairs);
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${" ".repeat(indent)}${k.padEnd(width)}  ${pairs[k]}`).join("\n");
}
