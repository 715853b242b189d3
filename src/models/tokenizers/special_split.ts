// special_split.ts: cuts text at the special tokens it contains, before any merging (llama.cpp's
// tokenizer_st_partition, Hugging Face's added-token extraction). Longer tokens win over shorter
// ones that start at the same place. It does not decide which tokens are special: tokenizer.ts does.

/** A run of plain text (with where it starts in the input) or a special token's id. */
export type Fragment = { readonly text: string; readonly start: number } | { readonly id: number };

export class SpecialSplitter {
  private readonly pattern: RegExp | undefined;

  constructor(private readonly ids: ReadonlyMap<string, number>) {
    const texts = [...ids.keys()].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
    this.pattern = texts.length === 0 ? undefined : new RegExp(texts.map(escapeRegExp).join("|"), "gu");
  }

  split(text: string): Fragment[] {
    const out: Fragment[] = [];
    if (this.pattern === undefined) {
      if (text.length > 0) out.push({ text, start: 0 });
      return out;
    }
    let at = 0;
    for (const m of text.matchAll(this.pattern)) {
      if (m.index > at) out.push({ text: text.slice(at, m.index), start: at });
      out.push({ id: this.ids.get(m[0])! });
      at = m.index + m[0].length;
    }
    if (at < text.length) out.push({ text: text.slice(at), start: at });
    return out;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
