// line_prefixer.ts: one rank's output stream cut into whole lines, each written with the rank's
// prefix ("[rank 3] "), so the lines of N processes sharing one terminal stay readable. It owns only
// the cutting; which stream and which prefix are the launcher's.

export class LinePrefixer {
  private pending = "";

  constructor(private readonly prefix: string, private readonly write: (text: string) => void) {}

  /** Text as it arrives (already decoded): complete lines are written now, the rest waits. */
  push(text: string): void {
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop()!;
    // NOTE: one write per chunk, not per line: interleaving between ranks then happens at line
    // boundaries only, and a chatty rank costs one syscall per chunk.
    if (lines.length > 0) this.write(lines.map((l) => `${this.prefix}${l}\n`).join(""));
  }

  /** The stream ended: a last line without its newline still gets the prefix and a newline. */
  end(): void {
    if (this.pending !== "") this.write(`${this.prefix}${this.pending}\n`);
    this.pending = "";
  }
}
