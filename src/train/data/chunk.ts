// chunk.ts: cuts documents into the tasks that worker threads tokenize. The cut points depend on the
// text and a fixed target size only, never on the number of workers, so the shards come out the same
// bytes however many workers ran. It does not tokenize.

/** Characters per task (UTF-16 units), when a document may be cut. */
export const TASK_CHARS = 1 << 16;

export interface Task {
  /** Index of the document the text belongs to. */
  readonly doc: number;
  /** Whether this is the document's last piece (its end-of-text id follows it). */
  readonly last: boolean;
  readonly text: string;
}

/**
 * One task per document, or (`cuttable`) pieces of about `target` characters cut right after a newline
 * that sits between two characters that are not whitespace (see token_codec.ts cutsAtNewlines).
 */
export function makeTasks(docs: readonly string[], cuttable: boolean, target = TASK_CHARS): Task[] {
  const tasks: Task[] = [];
  docs.forEach((text, doc) => {
    let start = 0;
    while (cuttable && text.length - start > target) {
      const cut = cutAfter(text, start + target);
      if (cut < 0) break;
      tasks.push({ doc, last: false, text: text.slice(start, cut) });
      start = cut;
    }
    tasks.push({ doc, last: true, text: text.slice(start) });
  });
  return tasks;
}

const SPACE = /\s/u;

/** The first position p >= from with text[p-1] == "\n", text[p-2] and text[p] not whitespace; -1 if none. */
function cutAfter(text: string, from: number): number {
  for (let i = text.indexOf("\n", from - 1); i >= 0 && i + 1 < text.length; i = text.indexOf("\n", i + 1)) {
    if (i >= 1 && !SPACE.test(text[i - 1]!) && !SPACE.test(text[i + 1]!)) return i + 1;
  }
  return -1;
}
