// The llama.cpp side-by-side benchmark (bench/peers/): its ratio arithmetic and table, the alternating
// order of the paired runs, the "not installed" path through the real bench:generate command, and, where
// node-llama-cpp is installed (npm run peer:install; CI has no peer), the peer on stories260K: it must
// produce the same greedy tokens as kiln's cpu backend from the same GGUF file kiln wrote.

import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import type { Engine, GeneratePeerResults } from "../../bench/peers/llama_cpp_generate.js";
import { kilnEngine, peerEngine, peerThreads, renderPeerMarkdown, runPair } from "../../bench/peers/llama_cpp_generate.js";
import { openLlamaCpp, openPeerGenerator } from "../../bench/peers/llama_cpp.js";
import { NOT_INSTALLED, loadNodeLlamaCpp } from "../../bench/peers/llama_cpp_location.js";
import { stories260KGguf } from "../../bench/peers/peer_models.js";
import { compare, leadingAgreement, sideBySideTable } from "../../bench/peers/side_by_side.js";
import { runProcess } from "../helpers/kiln_cli.js";
import { missingReason } from "../helpers/skip_reasons.js";

const GENERATE = fileURLToPath(new URL("../../bench/generate.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "kiln-bench-peer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("side by side arithmetic (no peer needed)", () => {
  it("takes the ratio of the medians and the spread of the per-pair ratios", () => {
    // kiln median 200 ms -> 320 tokens/s; peer median 100 ms -> 640 tokens/s; pairs 50/100, 100/300, 400/200.
    const c = compare(64, [100, 300, 200], [50, 100, 400]);
    expect(c.kilnTokensPerS).toBeCloseTo(320, 9);
    expect(c.peerTokensPerS).toBeCloseTo(640, 9);
    expect(c.ratio).toBeCloseTo(0.5, 12);
    expect(c.pairRatios.min).toBeCloseTo(1 / 3, 12);
    expect(c.pairRatios.median).toBeCloseTo(0.5, 12);
    expect(c.pairRatios.max).toBeCloseTo(2, 12);
    expect(c.reps).toBe(3);
    expect(sideBySideTable([{ model: "m", params: "1M", threads: 2, workload: "decode tg64", comparison: c }], "llama.cpp")).toEqual([
      "| model | params | threads | workload | kiln tokens/s | llama.cpp tokens/s | kiln / llama.cpp | pair ratios (min-max) | pairs |",
      "|---|--:|--:|---|--:|--:|--:|--:|--:|",
      "| m | 1M | 2 | decode tg64 | 320 | 640 | 0.50 | 0.33-2.00 | 3 |",
    ]);
  });

  it("refuses unpaired or impossible timings, naming the side", () => {
    expect(() => compare(64, [1, 2], [1])).toThrow(/same number .* got 2 and 1/);
    expect(() => compare(64, [], [])).toThrow(/same number/);
    expect(() => compare(64, [1, 0], [1, 1])).toThrow(/kiln run time must be a positive number of ms, got 0/);
    expect(() => compare(64, [1, 1], [1, Number.NaN])).toThrow(/peer run time .* got NaN/);
    expect(() => compare(0, [1], [1])).toThrow(/tokens must be > 0, got 0/);
  });

  it("counts the leading tokens two continuations share", () => {
    expect(leadingAgreement([1, 2, 3], [1, 2, 4])).toBe(2);
    expect(leadingAgreement([5], [6])).toBe(0);
    expect(leadingAgreement([1, 2], [1, 2, 3])).toBe(2);
  });

  it("tells both engines the same thread count, from KILN_THREADS, then KILN_CPU_THREADS, then the cores", () => {
    expect(peerThreads({ KILN_THREADS: "3", KILN_CPU_THREADS: "2" })).toBe(3);
    expect(peerThreads({ KILN_CPU_THREADS: "2" })).toBe(2);
    expect(peerThreads({})).toBe(availableParallelism());
    expect(() => peerThreads({ KILN_THREADS: "two" })).toThrow('KILN_THREADS must be an integer from 1 to 256, got "two"');
    expect(() => peerThreads({ KILN_CPU_THREADS: "0" })).toThrow(/KILN_CPU_THREADS/);
  });

  it("alternates the engines within each pair (kiln first on even pairs) and compares what each measured", async () => {
    const calls: string[] = [];
    // NOTE: engines with fixed, different times per call, so a swapped or misassigned sample changes the result.
    const fixed = (who: string, prefill: number[], decode: number[]): Engine => {
      let i = 0;
      return async (prompt, n) => {
        calls.push(who);
        const k = i++;
        return { prefillMs: prefill[k]!, decodeMs: decode[k]!, ids: Array.from({ length: n }, (_, j) => (who === "kiln" || j < 2 ? j : 99)) };
      };
    };
    const m = { name: "m", path: "/nowhere.gguf", params: 1000 };
    const r = await runPair(m, 512, fixed("kiln", [9, 10, 20, 30], [9, 64, 128, 32]), fixed("peer", [9, 5, 40, 10], [9, 32, 32, 64]), { promptTokens: 8, decodeTokens: 4, reps: 3 });
    expect(calls).toEqual(["kiln", "peer", "kiln", "peer", "peer", "kiln", "kiln", "peer"]);
    expect(r.kiln.prefillMs).toEqual([10, 20, 30]); // the warm-up (9) is left out
    expect(r.peer.decodeMs).toEqual([32, 32, 64]);
    expect(r.prefill.ratio).toBeCloseTo(10 / 20, 12); // peer median 10 ms / kiln median 20 ms
    expect(r.decode.ratio).toBeCloseTo(32 / 64, 12);
    expect([r.agree, r.compared]).toEqual([2, 4]);
    const results: GeneratePeerResults = {
      suite: "generate-peer", version: 1, date: "2026-12-07T12:00:00.000Z",
      machine: { os: "os", cpu: "cpu", cores: 2, memoryGiB: 1, node: "v20", tag: "t" }, threads: 2,
      peer: { name: "llama.cpp", version: "v", systemInfo: "AVX2 = 1" }, quick: false,
      sanity: { prompt: "Once", kiln: [1, 2], peer: [1, 3], agree: 1, text: "x" }, runs: [r],
    };
    const md = renderPeerMarkdown(results);
    expect(md).toContain("| m | 1.00K | 2 | prefill pp8 | 400 | 800 | 0.50 |");
    expect(md).toContain("| m | 1.00K | 2 | decode tg4 | 62.5 | 125 | 0.50 |");
    expect(md).toContain("kiln and llama.cpp agree on 1 of 2 tokens");
    expect(md).toContain("m: the timed prompt's greedy tokens agree on the first 2 of 4");
  });
});

describe("llama.cpp peer absent", () => {
  const empty = join(dir, "no-peer");

  it("loading it reports the install command", async () => {
    expect(await loadNodeLlamaCpp({ KILN_PEER_DIR: empty })).toEqual({ missing: NOT_INSTALLED });
  });

  it("bench:generate --peer llama.cpp prints 'not installed' and exits 0; an unknown peer is refused by name", async () => {
    const env = { ...process.env, KILN_PEER_DIR: empty };
    const ok = await runProcess(process.execPath, ["--import", "tsx", GENERATE, "--peer", "llama.cpp"], { env, timeoutMs: 50_000 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("peer: not installed (run npm run peer:install)");
    const bad = await runProcess(process.execPath, ["--import", "tsx", GENERATE, "--peer", "vllm"], { env, timeoutMs: 50_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--peer must be one of llama.cpp, llama-bench, got 'vllm'");
  }, 60_000);
});

describe("llama.cpp peer on stories260K", () => {
  it("runs prefill and decode on the GGUF kiln wrote and agrees with kiln's greedy tokens", async (ctx) => {
    const found = await loadNodeLlamaCpp();
    if ("missing" in found) return ctx.skip(missingReason("llamacpp", found.missing));
    const m = stories260KGguf(join(dir, "models"));
    const { llama, info } = await openLlamaCpp(found.lib, 1);
    try {
      expect(info.version).toMatch(/^node-llama-cpp \d+\.\d+\.\d+ /);
      const g = await openPeerGenerator(llama, m.path, { threads: 1, contextSize: 64 });
      const kiln = kilnEngine(m.path, await getBackend("cpu"));
      try {
        const r = await runPair(m, 512, kiln.run, peerEngine(g), { promptTokens: 8, decodeTokens: 8, reps: 3 });
        expect(r.compared).toBe(8);
        expect(r.agree).toBe(8);
        for (const c of [r.prefill, r.decode]) {
          expect(c.kilnTokensPerS).toBeGreaterThan(0);
          expect(c.peerTokensPerS).toBeGreaterThan(0);
          expect(c.ratio).toBeCloseTo(c.kilnTokensPerS / c.peerTokensPerS, 9);
        }
        // The peer's own continuation, outside runPair: 8 greedy tokens after the prefill token.
        const first = await g.prefill([1, 403, 407, 261, 378]); // BOS "Once upon a time" in tok512
        const rest = await g.decode(first, 8);
        expect(rest).toHaveLength(8);
        const mine = await kiln.run([1, 403, 407, 261, 378], 9);
        expect([first, ...rest]).toEqual(mine.ids);
      } finally {
        kiln.dispose();
        await g.dispose();
      }
    } finally {
      await llama.dispose();
    }
  }, 60_000);
});
