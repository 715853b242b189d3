// stories260K converted to GGUF (f32 and q8_0) and to an HF safetensors folder loads back and
// generates the same greedy text as the original llama2.c checkpoint (issue 3's Done-when).

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));
const kiln = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const dir = mkdtempSync(join(tmpdir(), "kiln-convert-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REFERENCE = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";

describe("converted models generate the original's text", () => {
  const generate = (model: string) => kiln("generate", "--model", model, "--prompt", "Once upon a time", "--max-tokens", "60", "--temperature", "0", "--backend", "cpu");

  it("llama2.c -> GGUF f32, GGUF q8_0 and HF folder", () => {
    expect(generate("stories260K").trimEnd()).toBe(REFERENCE);
    kiln("convert", "--model", "stories260K", "--to", "gguf", "--out", join(dir, "s.gguf"));
    kiln("convert", "--model", "stories260K", "--to", "hf", "--out", join(dir, "hf"));
    expect(generate(join(dir, "s.gguf")).trimEnd()).toBe(REFERENCE);
    expect(generate(join(dir, "hf")).trimEnd()).toBe(REFERENCE);
    // 8-bit weights change the logits a little; the greedy text of this prompt survives them.
    kiln("convert", "--model", "stories260K", "--to", "gguf", "--type", "q8_0", "--out", join(dir, "q.gguf"));
    expect(generate(join(dir, "q.gguf")).trimEnd()).toBe(REFERENCE);
  });
});
