// kv_compaction.ts is the KV cache resize/compaction benchmark (`npm run bench:kv`): the Engine on the
// bundled stories260K, its KV pool resized between steps (src/serve/kv_compaction.ts) while requests
// hold blocks spread over the pool. It reports, per pool size: the resize's wall time per MB of K/V
// copied (the gather writes every row of the new cache), next to a plain host copy of the same bytes
// (TypedArray.set, alternating with the resize: the floor on this machine); the bytes the memory
// accountant (src/core/memory.ts) sees returned by a shrink; and the cost the next steps pay (the
// captured steps are dropped and captured again): time per output token of a streaming request right
// after a resize against its median. Results: bench/results/kv-compaction-<backend>-<machine>.{json,md}.
//
//   npx tsx bench/kv_compaction.ts [--backend cpu] [--blocks 512,2048,4096] [--reps 5] [--tag T]

import { writeFileSync, mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import type { BackendName } from "../src/index.js";
import { getBackend } from "../src/index.js";
import { memoryAccountant, trackMemory } from "../src/core/memory.js";
import { builtinModel, loadModel } from "../src/models/formats/load_model.js";
import { fromLoaded } from "../src/models/language_model.js";
import { loadLlama2cTokenizer } from "../src/models/tokenizers/index.js";
import { Engine } from "../src/serve/engine.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const backendName = arg("backend", "cpu") as BackendName;
const sizes = arg("blocks", "512,2048,4096").split(",").map(Number);
const reps = Number(arg("reps", "5"));
const MODEL = "stories260K";
const MB = 2 ** 20;

interface SizeResult {
  readonly blocks: number;
  readonly shrinkTo: number;
  readonly liveBlocks: number;
  readonly mbCopiedShrink: number;
  readonly mbCopiedGrow: number;
  readonly msShrink: number;
  readonly msGrow: number;
  readonly msPerMbShrink: number;
  readonly msPerMbGrow: number;
  readonly hostCopyMsPerMb: number;
  readonly movedBlocksMedian: number;
  readonly bytesReturned: number;
  readonly bytesExpected: number;
  /** Gap between two tokens of one stream across a resize (the resize, then a step that captures again). */
  readonly gapAcrossResizeMs: number;
  /** The resizes' own time in that stream. */
  readonly resizeInStreamMs: number;
}

async function one(blocks: number): Promise<SizeResult> {
  const backend = trackMemory(await getBackend(backendName));
  const acct = memoryAccountant(backend)!;
  const loaded = loadModel(MODEL);
  const tokenizer = loadLlama2cTokenizer(builtinModel(MODEL)!.tokenizer, loaded.config.vocabSize);
  const engine = new Engine([{ id: MODEL, model: fromLoaded(loaded, backend), tokenizer, stopTokenIds: [] }], {
    numBlocks: blocks, blockSize: 16, maxNumSeqs: 16, warmup: true,
  });
  await engine.ready();
  const core = engine.core(MODEL)!;
  const bpb = core.runner.sizing.bytesPerBlock;
  let id = 0;
  const stream = async (maxTokens: number, onChunk?: (n: number) => void) => {
    let n = 0;
    for await (const c of engine.generate({ reqId: `b${id++}`, model: MODEL, prompt: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens, ignoreEos: true })) {
      n += c.tokenIds.length;
      onChunk?.(n);
    }
  };
  // 8 long streams hold blocks spread over the pool; 8 short ones end early and leave holes between them.
  const held = Array.from({ length: 16 }, (_, i) => stream(i % 2 ? 400 : 40));
  while (core.numSteps < 60) await new Promise((r) => setTimeout(r, 10));
  const live = core.stats().numBlocks - core.stats().numFreeBlocks;
  // NOTE: never below what the 8 long streams can hold at their end (8 x 26 blocks of 16 tokens).
  const shrinkTo = Math.max(8 * 26 + 16, Math.floor(blocks / 2));
  const shrink: number[] = [], grow: number[] = [], host: number[] = [], moved: number[] = [];
  let bytesReturned = 0;
  const hostSrc = new Float32Array((shrinkTo * bpb) / 4);
  const hostDst = new Float32Array(hostSrc.length);
  for (let r = 0; r < reps; r++) {
    const before = acct.snapshot().liveTotal;
    const s = await engine.resizeKv(MODEL, shrinkTo);
    bytesReturned = before - acct.snapshot().liveTotal;
    shrink.push(s.ms);
    moved.push(s.movedBlocks);
    // The host floor: copy the same bytes once, alternating with the resizes.
    const t0 = performance.now();
    hostDst.set(hostSrc);
    host.push(performance.now() - t0);
    grow.push((await engine.resizeKv(MODEL, blocks)).ms);
  }
  await Promise.all(held);
  // Per-token time of one streaming request, with a resize every 40 tokens.
  const after: number[] = [];
  let last = performance.now();
  let resized = false;
  const resizes: Promise<{ ms: number }>[] = [];
  await stream(240, (n) => {
    const now = performance.now();
    if (resized) after.push(now - last);
    resized = false;
    if (n % 40 === 0) {
      resizes.push(engine.resizeKv(MODEL, n % 80 === 0 ? blocks : shrinkTo));
      resized = true;
    }
    last = now;
  });
  const inStream = (await Promise.all(resizes)).map((r) => r.ms);
  await engine.close();
  const mbS = (shrinkTo * bpb) / MB, mbG = (blocks * bpb) / MB;
  return {
    blocks, shrinkTo, liveBlocks: live, mbCopiedShrink: mbS, mbCopiedGrow: mbG,
    msShrink: median(shrink), msGrow: median(grow), msPerMbShrink: median(shrink) / mbS, msPerMbGrow: median(grow) / mbG,
    hostCopyMsPerMb: median(host) / mbS, movedBlocksMedian: median(moved),
    bytesReturned, bytesExpected: (blocks - shrinkTo) * bpb,
    gapAcrossResizeMs: median(after), resizeInStreamMs: median(inStream),
  };
}

const machine = machineInfo(arg("tag", "") || undefined);
const started = new Date().toISOString();
const load = loadavg()[0]!;
const results: SizeResult[] = [];
for (const b of sizes) {
  const r = await one(b);
  results.push(r);
  console.log(JSON.stringify(r));
}
const out = { bench: "kv-compaction", backend: backendName, model: MODEL, started, loadavg1: load, machine, results };
const base = `bench/results/kv-compaction-${backendName}-${machine.tag}`;
mkdirSync("bench/results", { recursive: true });
writeFileSync(`${base}.json`, JSON.stringify(out, null, 2) + "\n");
const f = (x: number, d = 2) => x.toFixed(d);
const md = [
  `# KV cache resize / compaction (${backendName}, ${MODEL}, block 16)`,
  "",
  `${started}, ${machine.cpu} (${machine.cores} cores, load ${f(load, 1)} at start), Node ${machine.node}. Medians of ${reps} resizes each way while 8 requests stream. The copy writes every row of the new cache, so its cost does not depend on how many blocks move. 'gap across a resize': between two tokens of one streaming request, the resize then a step that captures its shape again; 'of it, the resize'.`,
  "",
  "| pool blocks | shrink to | live | MB copied (shrink) | ms shrink | ms/MB shrink | ms/MB grow | host copy ms/MB | resize / host copy | blocks moved | bytes returned (accountant) | expected | gap across a resize ms | of it, the resize ms |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...results.map((r) => `| ${r.blocks} | ${r.shrinkTo} | ${r.liveBlocks} | ${f(r.mbCopiedShrink)} | ${f(r.msShrink, 1)} | ${f(r.msPerMbShrink)} | ${f(r.msPerMbGrow)} | ${f(r.hostCopyMsPerMb, 3)} | ${f(r.msPerMbShrink / r.hostCopyMsPerMb, 0)}x | ${r.movedBlocksMedian} | ${r.bytesReturned} | ${r.bytesExpected} | ${f(r.gapAcrossResizeMs, 1)} | ${f(r.resizeInStreamMs, 1)} |`),
  "",
].join("\n");
writeFileSync(`${base}.md`, md);
console.log(md);
