// spec_decode.ts is the speculative-decoding benchmark (`npx tsx bench/spec_decode.ts`): the in-process
// Engine on one target model, without speculation ("plain") and with each drafter ("ngram": prompt
// lookup; "draft": a small model of the same tokenizer), closed loop at each concurrency, 8 different
// story prompts, greedy, EOS ignored. Modes alternate round by round (plain, ngram, draft, plain, ...)
// on engines built and warmed up once, so machine load hits them alike; each row reports the median
// over rounds of output tokens/s and tokens per CPU-second of this (single-threaded) process, the
// acceptance rate and the tokens per target forward, and whether every mode's tokens equal plain's.
// Results go to bench/results/spec-decode-<target>-<machine>.{json,md}.
//
//   npx tsx bench/spec_decode.ts [--target models/spec-pair/target/model.gguf] [--draft models/spec-pair/draft/model.gguf|none]
//       [--concurrency 1,8] [--tokens 48] [--rounds 3] [--k 4] [--prompts 8] [--tag NAME]

import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { getBackend } from "../src/index.js";
import { fromLoaded, openModel } from "../src/models/index.js";
import type { EngineOptions } from "../src/serve/index.js";
import { DraftModelDrafter, Engine, NgramDrafter } from "../src/serve/index.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const targetPath = arg("target", "models/spec-pair/target/model.gguf");
const draftPath = arg("draft", "models/spec-pair/draft/model.gguf");
const levels = arg("concurrency", "1,8").split(",").map(Number);
const tokens = Number(arg("tokens", "48"));
const rounds = Number(arg("rounds", "3"));
const k = Number(arg("k", "4"));
const PROMPTS = [
  "Once upon a time", "The cat", "Lily went to the park with her mom", "One day", "There was a little dog named Max",
  "Tom had a big red ball", "The sun was hot", "Ben and Mia",
].slice(0, Number(arg("prompts", "8")));

type Mode = "plain" | "ngram" | "draft";

interface Run {
  readonly tokensPerS: number;
  readonly tokensPerCpuS: number;
  readonly outputs: number[][];
  readonly draftTokens: number;
  readonly acceptedTokens: number;
  readonly drafts: number;
  readonly emitted: number;
}

const backend = await getBackend("cpu");
const target = openModel(targetPath);
const modes: Mode[] = draftPath === "none" ? ["plain", "ngram"] : ["plain", "ngram", "draft"];
const draftModel = draftPath === "none" ? undefined : fromLoaded(openModel(draftPath).loaded, backend).model;

async function makeEngine(mode: Mode): Promise<Engine> {
  const opts: EngineOptions = {
    warmup: true, maxNumSeqs: Math.max(...levels),
    ...(mode === "ngram" ? { speculative: { drafter: () => new NgramDrafter(), maxK: k } } : {}),
    ...(mode === "draft" ? { speculative: { drafter: (t) => DraftModelDrafter.create(draftModel!, t, { name: draftPath }), maxK: k } } : {}),
  };
  const engine = new Engine([{ id: "target", model: fromLoaded(target.loaded, backend), tokenizer: target.tokenizer, stopTokenIds: target.stopTokenIds }], opts);
  await engine.ready();
  return engine;
}

async function runLevel(engine: Engine, concurrency: number, id: string): Promise<Run> {
  const requests = Math.max(PROMPTS.length, 2 * concurrency);
  const s0 = (await engine.stats()).speculative;
  const outputs: number[][] = [];
  let next = 0;
  let total = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const client = async () => {
    while (next < requests) {
      const n = next++;
      const ids: number[] = [];
      const gen = engine.generate({
        reqId: `${id}-${n}`, model: "target", prompt: { kind: "text", text: PROMPTS[n % PROMPTS.length]! },
        sampling: { temperature: 0 }, maxTokens: tokens, ignoreEos: true,
      });
      for await (const c of gen) ids.push(...c.tokenIds);
      outputs[n] = ids;
      total += ids.length;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const s1 = (await engine.stats()).speculative;
  const d = (f: "numDraftTokens" | "numAcceptedTokens" | "numDrafts" | "numEmittedTokens") => (s1?.[f] ?? 0) - (s0?.[f] ?? 0);
  return {
    tokensPerS: total / seconds, tokensPerCpuS: total / ((cpu.user + cpu.system) / 1e6), outputs,
    draftTokens: d("numDraftTokens"), acceptedTokens: d("numAcceptedTokens"), drafts: d("numDrafts"), emitted: d("numEmittedTokens"),
  };
}

const engines = new Map<Mode, Engine>();
for (const m of modes) engines.set(m, await makeEngine(m));
const runs = new Map<string, Run[]>();
for (const c of levels) {
  for (const m of modes) await runLevel(engines.get(m)!, c, `warm-${m}-${c}`); // captures this level's step shapes
  for (let r = 0; r < rounds; r++) {
    for (const m of modes) {
      const key = `${m}@${c}`;
      runs.set(key, [...(runs.get(key) ?? []), await runLevel(engines.get(m)!, c, `r${r}-${m}-${c}`)]);
    }
  }
}
for (const e of engines.values()) await e.close();

const rows = levels.flatMap((c) => modes.map((m) => {
  const rs = runs.get(`${m}@${c}`)!;
  const plain = runs.get(`plain@${c}`)!;
  const sum = (f: keyof Run) => rs.reduce((a, r) => a + (r[f] as number), 0);
  const tps = median(rs.map((r) => r.tokensPerS));
  const cpuTps = median(rs.map((r) => r.tokensPerCpuS));
  return {
    mode: m, concurrency: c, rounds, tokensPerS: tps, tokensPerCpuS: cpuTps,
    speedup: tps / median(plain.map((r) => r.tokensPerS)), cpuSpeedup: cpuTps / median(plain.map((r) => r.tokensPerCpuS)),
    acceptanceRate: sum("draftTokens") > 0 ? sum("acceptedTokens") / sum("draftTokens") : null,
    tokensPerTargetForward: sum("drafts") > 0 ? sum("emitted") / sum("drafts") : null,
    identicalToPlain: rs.every((r, i) => JSON.stringify(r.outputs) === JSON.stringify(plain[i]!.outputs)),
  };
}));

const machine = machineInfo(process.argv.includes("--tag") ? arg("tag", "") : undefined);
const result = {
  suite: "spec-decode", version: 1, date: new Date().toISOString(), machine, loadAverage1m: loadavg()[0] ?? null,
  target: targetPath, draft: draftPath, k, tokens, prompts: PROMPTS.length, temperature: 0, rows,
};
const name = targetPath.replace(/\/model\.gguf$/, "").replace(/\/+$/, "").split("/").pop()!.replace(/\.(gguf|bin)$/, "");
const base = `bench/results/spec-decode-${name}-${machine.tag}`;
const f = (x: number | null, d = 2) => (x === null ? "-" : x.toFixed(d));
const md = [
  `# Speculative decoding: ${targetPath}${draftPath === "none" ? "" : ` (draft ${draftPath})`}`,
  "",
  `${result.date}, ${machine.cpu} (${machine.cores} cores), ${machine.os}, Node ${machine.node}; load average at the end ${f(result.loadAverage1m, 1)}.`,
  `cpu backend, greedy, ${tokens} output tokens per request (EOS ignored), ${PROMPTS.length} prompts, k up to ${k} (adaptive), closed loop;`,
  `medians over ${rounds} rounds, modes alternating. Speed-up is against plain in the same rounds.`,
  "",
  "| mode | concurrency | tokens/s | speed-up | tokens per CPU-s | speed-up (CPU) | acceptance | tokens per target forward | same tokens as plain |",
  "|---|--:|--:|--:|--:|--:|--:|--:|---|",
  ...rows.map((r) => `| ${r.mode} | ${r.concurrency} | ${f(r.tokensPerS, 0)} | ${f(r.speedup)} | ${f(r.tokensPerCpuS, 0)} | ${f(r.cpuSpeedup)} | ${f(r.acceptanceRate)} | ${f(r.tokensPerTargetForward)} | ${r.identicalToPlain ? "yes" : "NO"} |`),
  "",
].join("\n");
writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(`${base}.md`, md);
console.log(md);
console.log(`wrote ${base}.json and ${base}.md`);
