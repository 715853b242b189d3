// plan_docs.test.ts: docs/planning.md embeds tables generated from the planner (the GPU table, the
// published-figures check, the worked examples) between <!-- generated:NAME --> markers; this test
// fails when any of them differs from what the library computes now. To refresh them after a change
// to the planner: KILN_UPDATE_DOCS=1 npx vitest run test/unit/plan_docs.test.ts

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { docBlocks } from "../../src/plan/examples.js";
import { publishedFigures } from "../../src/plan/figures.js";

const path = fileURLToPath(new URL("../../docs/planning.md", import.meta.url));
const marker = /<!-- generated:([a-z0-9-]+) -->\n([\s\S]*?)<!-- \/generated:\1 -->/g;

describe("docs/planning.md", () => {
  it("embeds exactly the tables the planner generates", () => {
    const blocks = docBlocks();
    let doc = readFileSync(path, "utf8");
    if (process.env.KILN_UPDATE_DOCS === "1") {
      doc = doc.replace(marker, (whole, name: string) => (blocks[name] === undefined ? whole : `<!-- generated:${name} -->\n${blocks[name]}\n<!-- /generated:${name} -->`));
      writeFileSync(path, doc);
    }
    const found = new Map([...doc.matchAll(marker)].map((m) => [m[1]!, m[2]!]));
    expect([...found.keys()].sort()).toEqual(Object.keys(blocks).sort());
    for (const [name, text] of Object.entries(blocks)) expect(found.get(name), `block ${name} (KILN_UPDATE_DOCS=1 refreshes it)`).toBe(`${text}\n`);
  });

  it("checks every published figure of the issue, each reproduced or explained", () => {
    const rows = publishedFigures();
    // memory 5, KV 6, decode 2, prefill 4, the GPU-hour assumption 1, compute 12 (FLOPs, hours, cost x 4),
    // and the seed rows of issue 15: precision 3, requests 2, GB200 and batched decode 4, cost 1, scaling 2
    expect(rows.length).toBe(5 + 6 + 2 + 4 + 1 + 12 + 3 + 2 + 4 + 1 + 2);
    for (const r of rows) {
      expect(Number.isFinite(r.kilnValue) && r.kilnValue > 0).toBe(true);
      if (r.verdict === "differs") expect(r.why.length).toBeGreaterThan(40);
    }
    const verdict = (figure: string) => rows.find((r) => r.figure === figure)!.verdict;
    expect(verdict("7B per token")).toBe("reproduced");
    expect(verdict("70B per token")).toBe("differs");
    expect(verdict("7B on 2T: FLOPs")).toBe("reproduced");
  });
});
