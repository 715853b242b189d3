// serve_speculative.ts: `kiln serve`'s speculative-decoding flags: --speculative ngram|draft:PATH and
// --spec-k K, turned into the engine's SpeculativeConfig (docs/speculative.md). It owns the flag syntax
// and loading the draft model; drafting and verifying are src/serve/speculative's.

import type { Backend } from "../index.js";
import { fromLoaded, openModel } from "../models/index.js";
import type { SpeculativeConfig } from "../serve/index.js";
import { DraftModelDrafter, NgramDrafter } from "../serve/index.js";

export const SPECULATIVE_HELP = `  --speculative S      speculative decoding: ngram (prompt lookup, no draft model) or draft:PATH (a small
                       model of the same tokenizer drafts; refused when its vocabulary differs)
  --spec-k K           most draft tokens per sequence and step; k adapts below it (default 4)`;

/** The engine's speculative config for the flags, or undefined when --speculative is absent. */
export function speculativeFromFlags(method: string | undefined, k: number | undefined, backend: Backend): SpeculativeConfig | undefined {
  if (method === undefined) {
    if (k !== undefined) throw new Error("serve: --spec-k needs --speculative");
    return undefined;
  }
  const maxK = k ?? 4;
  if (method === "ngram") return { drafter: () => new NgramDrafter(), maxK };
  if (method.startsWith("draft:") && method.length > "draft:".length) {
    const path = method.slice("draft:".length);
    const draft = fromLoaded(openModel(path).loaded, backend).model;
    const name = path.replace(/\/+$/, "").split("/").pop()!;
    return { drafter: (target) => DraftModelDrafter.create(draft, target, { name }), maxK };
  }
  throw new Error(`serve: --speculative must be ngram or draft:PATH, got '${method}'`);
}
