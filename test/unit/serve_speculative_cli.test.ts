// `kiln serve --speculative` end to end: the real command with the trained pair's draft model serves the
// target's greedy completion through the official openai client (the same text with speculative: false
// in the body, the opt-out), /metrics shows the draft and accepted token counters, and a draft whose
// vocabulary differs from the target's stops the server at load with both sizes (exit 1).

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));
const TARGET = "models/spec-pair/target/model.gguf";
const DRAFT = "models/spec-pair/draft/model.gguf";
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

function serve(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--backend", "cpu", "--max-batch", "2", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return child;
}

describe("kiln serve --speculative", () => {
  it("serves with a draft model, the same text with and without opting out, and reports acceptance on /metrics", async () => {
    const child = serve(["--model", `pair=${TARGET}`, "--speculative", `draft:${DRAFT}`, "--spec-k", "3"]);
    let out = "";
    child.stdout!.setEncoding("utf8");
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL within 40 s; stdout: ${out}`)), 40_000);
      child.stdout!.on("data", (d: string) => {
        out += d;
        const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
        if (m && out.includes("curl ")) (clearTimeout(timer), resolve(m[1]!));
      });
      child.once("exit", (code) => reject(new Error(`kiln serve exited early (${code}): ${out}`)));
    });
    expect(out).toContain("speculative decoding: draft:models/spec-pair/draft/model.gguf, k up to 3");
    try {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused" });
      const ask = (extra: object) => client.completions.create({ model: "pair", prompt: "Once upon a time", max_tokens: 24, temperature: 0, ...extra });
      const spec = await ask({});
      const optedOut = await ask({ speculative: false });
      expect(spec.choices[0]!.text.length).toBeGreaterThan(0);
      expect(spec.choices[0]!.text).toBe(optedOut.choices[0]!.text);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const draft = Number(/kiln_spec_decode_num_draft_tokens_total (\d+)/.exec(metrics)?.[1]);
      const accepted = Number(/kiln_spec_decode_num_accepted_tokens_total (\d+)/.exec(metrics)?.[1]);
      expect(draft).toBeGreaterThan(0);
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThanOrEqual(draft);
      expect(metrics).toMatch(/kiln_spec_decode_acceptance_rate 0\.\d+/);
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  }, 60_000);

  it("refuses a draft of another vocabulary at load, naming both sizes", async () => {
    const child = serve(["--speculative", `draft:${DRAFT}`]); // the default model is stories260K (512 tokens)
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(err).toMatch(/the draft model has a vocabulary of 1024 tokens, the target 512/);
  }, 30_000);

  it("rejects a bad --speculative value with exit code 2", async () => {
    const child = serve(["--speculative", "eagle"]);
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(err).toMatch(/--speculative must be ngram or draft:PATH, got 'eagle'/);
  }, 30_000);
});
