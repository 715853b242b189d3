// llama_bench_generate.ts: `npm run bench:generate -- --peer llama-bench`: kiln's cpu backend beside
// llama.cpp's own llama-bench binary (not node-llama-cpp, whose per-token JavaScript round trip
// understates llama.cpp on small models) on the same GGUF files kiln wrote (peer_models.ts), the same
// thread count, pp64 and tg64. Each repeat runs kiln once (prefill, then 64 greedy decode steps) and
// llama-bench once (`-r 1`: one process, its own untimed warm-up, then one timed pp64 and one tg64),
// alternating which goes first, after one warm-up of each; the table gives the ratio of the medians and
// the spread of the per-pair ratios (side_by_side.ts). $KILN_PEER_EXTRA adds GGUF files (comma-separated: the
// 85.7M model as Q8_0 / Q4_0 from `kiln quantize`, say). Results: bench/results/generate-peer-llama-bench-*.
//
// Threads: the same rule as the node-llama-cpp peer (peerThreads: KILN_THREADS, else KILN_CPU_THREADS,
// else the cores), told to llama-bench as -t and to kiln as KILN_CPU_THREADS.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getBackend } from "../../src/index.js";
import { loadModel } from "../../src/models/index.js";
import type { MachineInfo } from "../lib/machine.js";
import { machineInfo } from "../lib/machine.js";
import { fmt3 } from "../lib/markdown.js";
import type { LlamaBenchOutput } from "./llama_bench.js";
import { llamaBenchArgs, runLlamaBench, testMs } from "./llama_bench.js";
import { findLlamaCppTool, llamaCppCommit, notBuilt } from "./llama_cpp_bin.js";
import type { Engine, PeerModelRun, PeerRunOptions } from "./llama_cpp_generate.js";
import { kilnEngine, peerThreads, runPair } from "./llama_cpp_generate.js";
import { extraPeerModels, randomLlamaGguf, stories260KGguf } from "./peer_models.js";
import type { SideBySideRow } from "./side_by_side.js";
import { sideBySideTable } from "./side_by_side.js";

export interface LlamaBenchPeerInfo {
  readonly name: "llama-bench";
  readonly binary: string;
  /** The checkout's commit and date (git log -1), e.g. "3f545be (2026-08-22)". */
  readonly commit: string;
  /** llama-bench's own build_commit and build_number. */
  readonly build: string;
  readonly cpuInfo: string;
}

export interface LlamaBenchGenerateResults {
  readonly suite: "generate-peer-llama-bench";
  readonly version: 1;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly threads: number;
  readonly peer: LlamaBenchPeerInfo;
  readonly quick: boolean;
  readonly runs: readonly PeerModelRun[];
}

/**
 * llama-bench as an Engine: one process per run, timing pp<prompt.length> and tg<decode> once. Its own
 * prompt ids are random (it is not told kiln's), so `ids` is empty; `seen` gets each parsed output.
 */
export function llamaBenchEngine(bin: string, model: string, threads: number, seen: (o: LlamaBenchOutput) => void = () => {}): Engine {
  return async (prompt, decode) => {
    const out = await runLlamaBench(bin, llamaBenchArgs({ model, threads, promptTokens: prompt.length, decodeTokens: decode, reps: 1 }));
    seen(out);
    return { prefillMs: testMs(out, "pp", prompt.length)[0]!, decodeMs: testMs(out, "tg", decode)[0]!, ids: [] };
  };
}

const paramsText = (n: number): string => (n >= 1e6 ? `${fmt3(n / 1e6)}M` : `${fmt3(n / 1e3)}K`);

export function llamaBenchRows(r: LlamaBenchGenerateResults): SideBySideRow[] {
  return r.runs.flatMap((x) => [
    { model: x.model, params: paramsText(x.params), threads: r.threads, workload: `prefill pp${x.promptTokens}`, comparison: x.prefill },
    { model: x.model, params: paramsText(x.params), threads: r.threads, workload: `decode tg${x.decodeTokens}`, comparison: x.decode },
  ]);
}

export function renderLlamaBenchMarkdown(r: LlamaBenchGenerateResults): string {
  const m = r.machine;
  const t = `${r.threads} thread${r.threads === 1 ? "" : "s"}`;
  return [
    `### generate side by side: kiln cpu vs llama-bench, ${t} (${m.tag})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Run ${r.date.slice(0, 16).replace("T", " ")} UTC` +
      `${r.quick ? ", quick (a smoke test, not a measurement)" : ""}. Peer: llama.cpp's llama-bench (${r.peer.binary}), commit ${r.peer.commit}, ` +
      `build ${r.peer.build}. Same GGUF file, both told ${t}; kiln greedy on fixed prompt ids, llama-bench on its own random ids; ` +
      "one warm-up run each, then alternating pairs (one llama-bench process with -r 1 per pair); tokens/s of the medians.",
    "",
    ...sideBySideTable(llamaBenchRows(r), "llama-bench"),
    "",
    `- llama-bench cpu_info: ${r.peer.cpuInfo}; it times tg from an empty context, kiln decodes after its prompt.`,
    "",
  ].join("\n");
}

/** Runs the comparison; returns the exit code. Prints notBuilt() and returns 0 when llama-bench is absent. */
export async function runGenerateLlamaBench(opts: { quick: boolean; out: string; tag?: string }): Promise<number> {
  const bin = findLlamaCppTool("llama-bench");
  if (!bin) {
    console.log(notBuilt("llama-bench"));
    return 0;
  }
  const threads = peerThreads();
  // NOTE: set before the cpu backend starts its pool, which reads it once.
  process.env.KILN_CPU_THREADS = String(threads);
  const backend = await getBackend("cpu");
  const machine = machineInfo(opts.tag);
  const commit = llamaCppCommit(bin);
  const w: PeerRunOptions = { promptTokens: 64, decodeTokens: 64, reps: opts.quick ? 3 : 5 };
  console.log(`kiln cpu vs llama-bench (${bin}, ${commit}), ${threads} threads, pp${w.promptTokens} / tg${w.decodeTokens}, ${w.reps} alternating pairs`);
  let last: LlamaBenchOutput | undefined;
  const runs: PeerModelRun[] = [];
  for (const m of [stories260KGguf(), randomLlamaGguf(), ...extraPeerModels()]) {
    const kiln = kilnEngine(m.path, backend);
    try {
      const r = await runPair(m, loadModel(m.path).config.vocabSize, kiln.run, llamaBenchEngine(bin, m.path, threads, (o) => (last = o)), w);
      console.log(`  ${m.name}: prefill ${fmt3(r.prefill.kilnTokensPerS)} vs ${fmt3(r.prefill.peerTokensPerS)} tokens/s (${r.prefill.ratio.toFixed(2)}x), ` +
        `decode ${fmt3(r.decode.kilnTokensPerS)} vs ${fmt3(r.decode.peerTokensPerS)} tokens/s (${r.decode.ratio.toFixed(2)}x)`);
      runs.push(r);
    } finally {
      kiln.dispose();
    }
  }
  const peer: LlamaBenchPeerInfo = { name: "llama-bench", binary: bin, commit, build: `${last!.buildCommit} (${last!.buildNumber})`, cpuInfo: last!.cpuInfo };
  const results: LlamaBenchGenerateResults = { suite: "generate-peer-llama-bench", version: 1, date: new Date().toISOString(), machine, threads, peer, quick: opts.quick, runs };
  const md = renderLlamaBenchMarkdown(results);
  console.log(`\n${md}`);
  mkdirSync(opts.out, { recursive: true });
  const base = join(opts.out, `generate-peer-llama-bench-${machine.tag}-t${threads}`);
  writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + "\n");
  writeFileSync(`${base}.md`, md);
  console.log(`wrote ${base}.json and ${base}.md`);
  return 0;
}
