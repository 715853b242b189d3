// line_prefixer.ts: one rank's output stream cut into whole lines, each written with the rank's
// prefix ("[rank 3] "), so the lines of N processes sharing one terminal stay readable. It owns only
// the cutting; which stream and which prefix are the launcher's.

export class LinePrefixer {
  private pending = "";

  /** `keep`, when given, sees each whole line first (without its newline); false drops it (the launcher's markers). */
  constructor(private readonly prefix: string, private readonly write: (text: string) => void, private readonly keep: (line: string) => boolean = () => true) {}

  /** Text as it arrives (already decoded): complete lines are written now, the rest waits. */
  push(text: string): void {
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop()!;
    const kept = lines.filter((l) => this.keep(l));
    // NOTE: one write per chunk, not per line: interleaving between ranks then happens at line
    // boundaries only, and a chatty rank costs one syscall per chunk.
    if (kept.length > 0) this.write(kept.map((l) => `${this.prefix}${l}\n`).join(""));
  }

  /** The stream ended: a last line without its newline still gets the prefix and a newline. */
  end(): void {
    if (this.pending !== "" && this.keep(this.pending)) this.write(`${this.prefix}${this.pending}\n`);
    this.pending = "";
  }
}
