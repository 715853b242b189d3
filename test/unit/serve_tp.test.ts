// serve_tp.test.ts: `kiln serve --tp 2` end to end: the real command starts a worker process (rank 1) beside
// itself, and 8 concurrent greedy completions through the official openai client get the same tokens from
// it as from `kiln serve` (--tp 1) running beside it (stories260K, cpu, 127.0.0.1). Both stop cleanly on
// SIGTERM, the worker with them (a worker whose rank 0 dies exits too, with an error naming rank 0). Every process is killed in afterAll, also when a test fails.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));
const servers: ChildProcess[] = [];
// NOTE: each server leads its own process group (detached), so the launcher, the command it runs and the
// worker rank all go with one kill of the group.
afterAll(() => {
  for (const s of servers) {
    if (s.exitCode !== null || s.signalCode !== null || s.pid === undefined) continue;
    try {
      process.kill(-s.pid, "SIGKILL");
    } catch {
      // ESRCH: gone already.
    }
  }
});

const PROMPTS = ["Once upon a time", "The cat", "Lily and Tom", "One day", "The big dog", "Sam had a ball", "In the park", "Mom said"];

/** Starts `kiln serve` with `args` on a free port; resolves with its /v1 URL and its output so far. */
async function startServer(args: string[]): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--backend", "cpu", "--max-batch", "8", "--kv-blocks", "64", ...args], {
    stdio: ["ignore", "pipe", "pipe"], detached: true,
  });
  servers.push(child);
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 100 s; output: ${out}`)), 100_000);
    child.stdout!.on("data", (d: string) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out);
      if (m && out.includes("curl ")) (clearTimeout(timer), resolve(m[1]!));
    });
    child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`kiln serve exited early (${code}): ${out}`))));
  });
  return { child, url, out: () => out };
}

/** The prompts' greedy completions, all at once (the engine batches them together). */
async function completeAll(url: string): Promise<{ text: string; tokens: number; finish: string }[]> {
  const client = new OpenAI({ baseURL: url, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
  return Promise.all(PROMPTS.map(async (prompt) => {
    const r = await client.completions.create({ model: "stories260K", prompt, max_tokens: 24, temperature: 0 });
    return { text: r.choices[0]!.text, tokens: r.usage!.completion_tokens, finish: r.choices[0]!.finish_reason };
  }));
}

describe("kiln serve --tp 2", () => {
  it("gives the same greedy tokens as --tp 1 under concurrent load, and stops with its worker", async () => {
    const [tp2, tp1] = await Promise.all([startServer(["--tp", "2"]), startServer([])]);
    expect(tp2.out()).toContain("tensor parallel: 2 ranks");
    const [a, b] = await Promise.all([completeAll(tp2.url), completeAll(tp1.url)]);
    expect(a).toEqual(b);
    // llama2.c's greedy text for the first prompt: neither server is just agreeing with a broken other.
    expect(a[0]!.text.startsWith(", there was a little girl named Lily. She loved to play")).toBe(true);
    expect(new Set(a.map((x) => x.text)).size).toBe(PROMPTS.length);
    for (const s of [tp2, tp1]) s.child.kill("SIGTERM");
    const codes = await Promise.all([tp2, tp1].map(async (s) => (s.child.exitCode ?? (await once(s.child, "exit"))[0])));
    expect(codes).toEqual([0, 0]);
  }, 150_000);

  it("refuses --tp with auto sizing, naming the flag", async () => {
    const child = spawn(process.execPath, [bin, "serve", "--tp", "2", "--kv-blocks", "auto"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    servers.push(child);
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(err).toMatch(/--tp serves one --model \(no NAME@VERSION, no --admin, no auto sizing\)/);
  }, 30_000);
});
