// Format detection, built-in names, tokenizer lookup, and `kiln convert` end to end in-process:
// stories260K -> GGUF and -> HF folder (tokenizer included) load back with identical tensors.

import { existsSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { convertCommand } from "../../src/cli/convert_command.js";
import { UsageError } from "../../src/cli/command.js";
import { builtinModel, detectFormat, loadModel, readGguf, writeGguf } from "../../src/models/formats/index.js";
import { STORIES260K_TOKENIZER } from "../helpers/fixtures.js";
import { sameTensors, scratch, STORIES260K_BIN, TINY_GGUF } from "./formats_helpers.js";

const STORIES = STORIES260K_BIN;
const BUNDLED = builtinModel("stories260K")!;

describe("loadModel: detection", () => {
  it("resolves the built-in name to the bundled copy", () => {
    expect(BUNDLED.model.endsWith("models/stories260K/stories260K.bin")).toBe(true);
    const m = loadModel("stories260K");
    expect(m.source).toBe(BUNDLED.model);
    expect(m.config.arch === "llama" && m.config.nKvHeads).toBe(4);
  });

  it("detects GGUF by its magic, whatever the name", () => {
    const s = scratch();
    try {
      copyFileSync(TINY_GGUF, join(s.dir, "model.bin"));
      expect(detectFormat(join(s.dir, "model.bin"))).toBe("gguf");
      expect(loadModel(join(s.dir, "model.bin")).config.vocabSize).toBe(32000);
    } finally {
      s.done();
    }
  });

  it("names the path when nothing fits", () => {
    const s = scratch();
    try {
      writeFileSync(join(s.dir, "notes.txt"), "hello");
      expect(() => loadModel(join(s.dir, "notes.txt"))).toThrow(/notes\.txt: magic: not a GGUF file/);
      expect(() => loadModel(join(s.dir, "missing.gguf"))).toThrow(/missing\.gguf: path: does not exist \(built-in models: stories260K\)/);
      expect(() => loadModel(s.dir)).toThrow(/: config\.json: the folder has no config\.json/);
    } finally {
      s.done();
    }
  });
});

describe("kiln convert", () => {
  let logs: string[] = [];
  beforeEach(() => {
    logs = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void logs.push(a.join(" ")));
    vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void logs.push(a.join(" ")));
  });
  afterEach(() => vi.restoreAllMocks());

  it("stories260K -> GGUF and -> HF folder, with the tokenizer, loading back identical", async () => {
    const s = scratch();
    try {
      // The tokenizer is found next to the model: models/stories260K/tok512.bin.
      const src = STORIES;
      const original = loadModel(src);

      expect(await convertCommand.run(["--model", src, "--to", "gguf", "--out", join(s.dir, "s.gguf")])).toBe(0);
      const g = loadModel(join(s.dir, "s.gguf"));
      expect(sameTensors(original, g)).toEqual([]);
      expect(g.config).toEqual({ ...original.config, normEps: Math.fround(1e-5) });

      expect(await convertCommand.run(["--model", src, "--to", "hf", "--out", join(s.dir, "hf")])).toBe(0);
      const h = loadModel(join(s.dir, "hf"));
      expect(sameTensors(original, h)).toEqual([]);
      expect(h.config).toEqual(original.config);

      // GGUF -> HF -> GGUF keeps every tensor.
      expect(await convertCommand.run(["--model", join(s.dir, "s.gguf"), "--to", "hf", "--out", join(s.dir, "hf2")])).toBe(0);
      expect(await convertCommand.run(["--model", join(s.dir, "hf2"), "--to", "gguf", "--out", join(s.dir, "s2.gguf")])).toBe(0);
      expect(sameTensors(original, loadModel(join(s.dir, "s2.gguf")))).toEqual([]);

      expect((readGguf(join(s.dir, "s.gguf")).metadata.get("tokenizer.ggml.tokens") as string[]).length).toBe(512);
      expect(JSON.parse(readFileSync(join(s.dir, "hf/tokenizer.json"), "utf8")).model.type).toBe("BPE");
      expect(existsSync(join(s.dir, "hf/tokenizer_config.json"))).toBe(true);
      expect(logs.join("\n")).toMatch(/tokenizer \(512 tokens\) included/);
    } finally {
      s.done();
    }
  });

  it("--no-tokenizer converts weights only; a GGUF's chat template travels to tokenizer_config.json", async () => {
    const s = scratch();
    try {
      expect(await convertCommand.run(["--model", STORIES, "--to", "gguf", "--out", join(s.dir, "w.gguf"), "--no-tokenizer"])).toBe(0);
      expect(readGguf(join(s.dir, "w.gguf")).metadata.has("tokenizer.ggml.tokens")).toBe(false);
      const tok = STORIES260K_TOKENIZER;
      // A GGUF with tokenizer and a chat template, made by converting and then adding the template.
      expect(await convertCommand.run(["--model", STORIES, "--to", "gguf", "--out", join(s.dir, "t.gguf"), "--tokenizer", tok])).toBe(0);
      const withTokenizer = loadModel(join(s.dir, "t.gguf"));
      const meta = new Map([...withTokenizer.metadata].filter(([k]) => k.startsWith("tokenizer.")));
      meta.set("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
      writeGguf(join(s.dir, "c.gguf"), withTokenizer, { tokenizerMetadata: meta });
      expect(await convertCommand.run(["--model", join(s.dir, "c.gguf"), "--to", "hf", "--out", join(s.dir, "hf")])).toBe(0);
      expect(JSON.parse(readFileSync(join(s.dir, "hf/tokenizer_config.json"), "utf8")).chat_template).toBe(meta.get("tokenizer.chat_template"));
      expect(logs.join("\n")).toMatch(/tokenizer \(512 tokens\) and chat template included/);
    } finally {
      s.done();
    }
  });

  it("checks its flags (usage errors) and reports bad input files (exit 1, file named)", async () => {
    const s = scratch();
    try {
      await expect(convertCommand.run(["--to", "gguf", "--out", "x"])).rejects.toThrow(UsageError);
      await expect(convertCommand.run(["--model", "m", "--to", "onnx", "--out", "x"])).rejects.toThrow(/--to must be gguf or hf/);
      await expect(convertCommand.run(["--model", "m", "--to", "hf", "--out", "x", "--type", "q8_0"])).rejects.toThrow(/--type for hf must be one of f32, f16, bf16/);
      writeFileSync(join(s.dir, "bad.gguf"), "GGUF\x07\0\0\0");
      expect(await convertCommand.run(["--model", join(s.dir, "bad.gguf"), "--to", "hf", "--out", join(s.dir, "o")])).toBe(1);
      expect(logs.join("\n")).toMatch(/kiln convert: .*bad\.gguf: version: unsupported GGUF version 7/);
      expect(existsSync(join(s.dir, "o"))).toBe(false);
    } finally {
      s.done();
    }
  });
});
