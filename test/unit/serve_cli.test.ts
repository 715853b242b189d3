// `kiln serve` end to end: the real command starts, prints its URL and a curl line, answers a
// completion with llama2.c's greedy text through the official openai client, and drains and exits 0
// on SIGTERM.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));

describe("kiln serve", () => {
  it("serves stories260K on a free port, sized by the planner (auto), and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--backend", "cpu", "--kv-blocks", "auto", "--max-batch", "auto"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL within 30 s; stdout: ${out}`)), 30_000);
      child.stdout.on("data", (d: string) => {
        out += d;
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out);
        if (m && out.includes("curl ")) (clearTimeout(timer), resolve(m[1]!));
      });
      child.once("exit", (code) => reject(new Error(`kiln serve exited early (${code}): ${out}`)));
    });
    // The planner's choice is printed and used.
    expect(out).toMatch(/auto \(--kv-blocks, --max-batch\): KV cache \d+ blocks x 16 tokens/);
    try {
      const client = new OpenAI({ baseURL: url, apiKey: "unused" });
      const r = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
      expect(r.choices[0]!.text).toBe(", there was a little girl named Lily. She loved to play");
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });

  it("rejects a bad flag with exit code 2", async () => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "abc"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(err).toMatch(/--port must be an integer >= 0/);
  });
});
