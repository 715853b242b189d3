// llama_cpp_generate.ts: `npm run bench:generate -- --peer llama.cpp`: kiln's cpu backend and llama.cpp
// (node-llama-cpp) side by side on the same GGUF files (peer_models.ts), the same prompt token ids, the
// same thread count, greedy: prefill of a 64-token prompt as one batch (pp64, with the first token) and
// 64 decode steps after it (tg64). The two engines alternate within each repeat (kiln first on even
// repeats, the peer first on odd ones), after one warm-up run each; the tables give the ratio of the
// medians and the spread of the per-pair ratios. A sanity line checks that both continue "Once upon a
// time" with the same greedy tokens on stories260K. Results: bench/results/generate-peer-llama-cpp-*.json/.md.
// $KILN_PEER_EXTRA adds GGUF files of its own (comma-separated paths: a quantized model, say) after those two.
//
// Threads: KILN_THREADS (else KILN_CPU_THREADS, else the host's available parallelism) is told to both:
// llama.cpp as its thread count (ideal and minimum), kiln through KILN_CPU_THREADS, its worker pool's size.

import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Backend } from "../../src/index.js";
import { getBackend } from "../../src/index.js";
import { fromLoaded, loadModel, openModel } from "../../src/models/index.js";
import type { MachineInfo } from "../lib/machine.js";
import { machineInfo } from "../lib/machine.js";
import { fmt3 } from "../lib/markdown.js";
import type { PeerGenerator, PeerInfo } from "./llama_cpp.js";
import { openLlamaCpp, openPeerGenerator } from "./llama_cpp.js";
import { loadNodeLlamaCpp } from "./llama_cpp_location.js";
import type { PeerModel } from "./peer_models.js";
import { extraPeerModels, randomLlamaGguf, stories260KGguf } from "./peer_models.js";
import type { Comparison, SideBySideRow } from "./side_by_side.js";
import { compare, leadingAgreement, sideBySideTable } from "./side_by_side.js";

export const PEERS = ["llama.cpp"] as const;

/** One model: the paired timings, their comparison, and whether the greedy tokens agreed. */
export interface PeerModelRun {
  readonly model: string;
  readonly params: number;
  readonly file: string;
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly kiln: { readonly prefillMs: readonly number[]; readonly decodeMs: readonly number[] };
  readonly peer: { readonly prefillMs: readonly number[]; readonly decodeMs: readonly number[] };
  readonly prefill: Comparison;
  readonly decode: Comparison;
  /** Leading greedy tokens (first token of prefill, then decode) on which the engines agree, of `compared`. */
  readonly agree: number;
  readonly compared: number;
}

export interface GeneratePeerResults {
  readonly suite: "generate-peer";
  readonly version: 1;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly threads: number;
  readonly peer: PeerInfo;
  readonly quick: boolean;
  readonly sanity: { readonly prompt: string; readonly kiln: readonly number[]; readonly peer: readonly number[]; readonly agree: number; readonly text: string };
  readonly runs: readonly PeerModelRun[];
}

/** The thread count both engines are told (see the file comment); throws naming the variable when it is not a count. */
export function peerThreads(env: NodeJS.ProcessEnv = process.env): number {
  for (const name of ["KILN_THREADS", "KILN_CPU_THREADS"] as const) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`${name} must be an integer from 1 to 256, got ${JSON.stringify(raw)}`);
    return n;
  }
  return availableParallelism();
}

const argmax = (x: Float32Array): number => {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
};

/** The timed prompt: BOS, then ids spread over the vocabulary (bench/generate.ts uses the same rule). */
export const promptIds = (n: number, vocab: number): number[] => Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3))));

interface Timed {
  readonly prefillMs: number;
  readonly decodeMs: number;
  readonly ids: number[];
}

/** One engine's run: prefill (with its greedy token), then `decode` steps; the same shape for both engines. */
export type Engine = (prompt: number[], decode: number) => Promise<Timed>;

export function kilnEngine(path: string, backend: Backend): { run: Engine; dispose(): void } {
  const model = fromLoaded(loadModel(path), backend);
  return {
    async run(prompt, decode) {
      model.reset();
      const t0 = performance.now();
      let next = argmax(await model.forwardPrefill(prompt));
      const t1 = performance.now();
      const ids = [next];
      for (let i = 0; i < decode; i++) ids.push((next = argmax(await model.decodeStep(next))));
      return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, ids: ids.slice(0, decode) };
    },
    dispose: () => model.dispose(),
  };
}

export function peerEngine(g: PeerGenerator): Engine {
  return async (prompt, decode) => {
    const t0 = performance.now();
    const first = await g.prefill(prompt);
    const t1 = performance.now();
    const rest = await g.decode(first, decode);
    return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, ids: [first, ...rest].slice(0, decode) };
  };
}

export interface PeerRunOptions {
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly reps: number;
}

/** Warm-up, then `reps` alternating pairs of runs of one model on both engines. */
export async function runPair(m: PeerModel, vocab: number, kiln: Engine, peer: Engine, o: PeerRunOptions): Promise<PeerModelRun> {
  const prompt = promptIds(o.promptTokens, vocab);
  const k0 = await kiln(prompt, o.decodeTokens);
  const p0 = await peer(prompt, o.decodeTokens);
  const ks: Timed[] = [];
  const ps: Timed[] = [];
  for (let i = 0; i < o.reps; i++) {
    if (i % 2 === 0) {
      ks.push(await kiln(prompt, o.decodeTokens));
      ps.push(await peer(prompt, o.decodeTokens));
    } else {
      ps.push(await peer(prompt, o.decodeTokens));
      ks.push(await kiln(prompt, o.decodeTokens));
    }
  }
  const kiln_ = { prefillMs: ks.map((r) => r.prefillMs), decodeMs: ks.map((r) => r.decodeMs) };
  const peer_ = { prefillMs: ps.map((r) => r.prefillMs), decodeMs: ps.map((r) => r.decodeMs) };
  return {
    model: m.name, params: m.params, file: m.path, promptTokens: o.promptTokens, decodeTokens: o.decodeTokens,
    kiln: kiln_, peer: peer_,
    prefill: compare(o.promptTokens, kiln_.prefillMs, peer_.prefillMs),
    decode: compare(o.decodeTokens, kiln_.decodeMs, peer_.decodeMs),
    agree: leadingAgreement(k0.ids, p0.ids), compared: Math.min(k0.ids.length, p0.ids.length),
  };
}

const paramsText = (n: number): string => (n >= 1e6 ? `${fmt3(n / 1e6)}M` : `${fmt3(n / 1e3)}K`);

export function peerRows(r: GeneratePeerResults): SideBySideRow[] {
  return r.runs.flatMap((x) => [
    { model: x.model, params: paramsText(x.params), threads: r.threads, workload: `prefill pp${x.promptTokens}`, comparison: x.prefill },
    { model: x.model, params: paramsText(x.params), threads: r.threads, workload: `decode tg${x.decodeTokens}`, comparison: x.decode },
  ]);
}

export function renderPeerMarkdown(r: GeneratePeerResults): string {
  const m = r.machine;
  return [
    `### generate side by side: kiln cpu vs ${r.peer.name}, ${r.threads} thread${r.threads === 1 ? "" : "s"} (${m.tag})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Run ${r.date.slice(0, 16).replace("T", " ")} UTC` +
      `${r.quick ? ", quick (a smoke test, not a measurement)" : ""}. Peer: ${r.peer.version}. Same GGUF file, same prompt ids, greedy, ` +
      `both told ${r.threads} thread${r.threads === 1 ? "" : "s"}; one warm-up run each, then alternating pairs; tokens/s of the medians.`,
    "",
    ...sideBySideTable(peerRows(r), r.peer.name),
    "",
    `- sanity: greedy from ${JSON.stringify(r.sanity.prompt)} on stories260K: kiln and ${r.peer.name} agree on ${r.sanity.agree} of ${r.sanity.kiln.length} tokens (${JSON.stringify(r.sanity.text)})`,
    ...r.runs.map((x) => `- ${x.model}: the timed prompt's greedy tokens agree on the first ${x.agree} of ${x.compared}`),
    `- ${r.peer.name} system info: ${r.peer.systemInfo}`,
    "",
  ].join("\n");
}

const SANITY_PROMPT = "Once upon a time";
const SANITY_TOKENS = 16;

/** Runs the whole comparison; returns the exit code. Prints NOT_INSTALLED (exit 0) when the peer is absent. */
export async function runGeneratePeer(opts: { peer: string; quick: boolean; out: string; tag?: string }): Promise<number> {
  if (!(PEERS as readonly string[]).includes(opts.peer)) throw new Error(`--peer must be one of ${PEERS.join(", ")}, got '${opts.peer}'`);
  const found = await loadNodeLlamaCpp();
  if ("missing" in found) {
    console.log(found.missing);
    return 0;
  }
  const threads = peerThreads();
  // NOTE: set before the cpu backend starts its pool, which reads it once.
  process.env.KILN_CPU_THREADS = String(threads);
  const backend = await getBackend("cpu");
  const machine = machineInfo(opts.tag);
  const { llama, info } = await openLlamaCpp(found.lib, threads);
  const w: PeerRunOptions = { promptTokens: 64, decodeTokens: 64, reps: opts.quick ? 3 : 5 };
  console.log(`kiln cpu vs ${info.version}, ${threads} threads, pp${w.promptTokens} / tg${w.decodeTokens}, ${w.reps} alternating pairs`);
  try {
    const models = [stories260KGguf(), randomLlamaGguf(), ...extraPeerModels()];
    const runs: PeerModelRun[] = [];
    let sanity: GeneratePeerResults["sanity"] | undefined;
    for (const m of models) {
      const kiln = kilnEngine(m.path, backend);
      const g = await openPeerGenerator(llama, m.path, { threads, contextSize: 256 });
      try {
        const vocab = loadModel(m.path).config.vocabSize;
        if (m.name === "stories260K") {
          const tok = openModel(m.path).tokenizer;
          const ids = tok.encode(SANITY_PROMPT, { addBos: true });
          const [k, p] = [await kiln.run(ids, SANITY_TOKENS), await peerEngine(g)(ids, SANITY_TOKENS)];
          sanity = { prompt: SANITY_PROMPT, kiln: k.ids, peer: p.ids, agree: leadingAgreement(k.ids, p.ids), text: tok.decode(k.ids) };
          console.log(`sanity: greedy from ${JSON.stringify(SANITY_PROMPT)}: kiln and llama.cpp agree on ${sanity.agree} of ${SANITY_TOKENS} tokens: ${JSON.stringify(sanity.text)}`);
        }
        const r = await runPair(m, vocab, kiln.run, peerEngine(g), w);
        console.log(`  ${m.name}: prefill ${fmt3(r.prefill.kilnTokensPerS)} vs ${fmt3(r.prefill.peerTokensPerS)} tokens/s (${r.prefill.ratio.toFixed(2)}x), ` +
          `decode ${fmt3(r.decode.kilnTokensPerS)} vs ${fmt3(r.decode.peerTokensPerS)} tokens/s (${r.decode.ratio.toFixed(2)}x)`);
        runs.push(r);
      } finally {
        kiln.dispose();
        await g.dispose();
      }
    }
    const results: GeneratePeerResults = { suite: "generate-peer", version: 1, date: new Date().toISOString(), machine, threads, peer: info, quick: opts.quick, sanity: sanity!, runs };
    const md = renderPeerMarkdown(results);
    console.log(`\n${md}`);
    mkdirSync(opts.out, { recursive: true });
    const base = join(opts.out, `generate-peer-llama-cpp-${machine.tag}-t${threads}`);
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + "\n");
    writeFileSync(`${base}.md`, md);
    console.log(`wrote ${base}.json and ${base}.md`);
    return 0;
  } finally {
    await llama.dispose();
  }
}
