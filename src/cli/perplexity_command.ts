// perplexity_command.ts: `kiln perplexity MODEL FILE [--ctx N] [--backend B]`: the model's perplexity on a
// text file, counted as llama.cpp's perplexity tool counts (src/models/perplexity.ts). Quantized GGUF
// weights are computed on in place, so this measures what serving that file would compute.

import { readFileSync } from "node:fs";
import { getBackend } from "../index.js";
import type { BackendName } from "../index.js";
import { fromLoaded, openModel, perplexity } from "../models/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgsWithPositionals } from "./command.js";

const HELP = `Usage: kiln perplexity MODEL FILE [--ctx N] [--max-chunks N] [--backend cpu|webgpu]

Perplexity of MODEL (a .gguf, llama2.c .bin, Hugging Face folder or built-in name) on the text in FILE.
The tokens are cut into chunks of N (default 128) tokens; each chunk starts with BOS and only its second
half is scored, as llama.cpp's perplexity tool counts, so the numbers compare with its [1]... output.

Options:
  --ctx N           tokens per chunk (default 128, at most the model's context)
  --max-chunks N    score at most N chunks (default: all)
  --backend B       cpu (default) or webgpu
  -h, --help        show this help

Exit status: 0 on success, 1 when the model or file cannot be read, 2 on a usage error.`;

export const perplexityCommand: Command = {
  name: "perplexity",
  summary: "a model's perplexity on a text file (chunked as llama.cpp counts)",
  help: HELP,
  async run(argv) {
    const parsed = parseCommandArgsWithPositionals(this, argv, {
      ctx: { type: "string" }, "max-chunks": { type: "string" }, backend: { type: "string" }, help: { type: "boolean", short: "h" },
    });
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new UsageError(`perplexity: give MODEL and FILE (got ${positionals.length} arguments)`, this);
    const int = (flag: string, v: string | undefined, dflt: number): number => {
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`perplexity: --${flag} must be a positive integer, got '${v}'`, this);
      return n;
    };
    const ctx = int("ctx", values.ctx, 128);
    const maxChunks = int("max-chunks", values["max-chunks"], Number.MAX_SAFE_INTEGER);
    const backendName = values.backend ?? "cpu";
    if (backendName !== "cpu" && backendName !== "webgpu") throw new UsageError(`perplexity: --backend must be cpu or webgpu, got '${backendName}'`, this);
    try {
      const [modelPath, textPath] = positionals as [string, string];
      const opened = openModel(modelPath);
      const text = readFileSync(textPath, "utf8");
      const tokens = opened.tokenizer.encode(text, { addBos: false }).slice(0, maxChunks === Number.MAX_SAFE_INTEGER ? undefined : maxChunks * ctx);
      const backend = await getBackend(backendName as BackendName);
      const lm = fromLoaded(opened.loaded, backend, { contextLength: ctx });
      const started = performance.now();
      const r = await perplexity(lm.model, tokens, ctx, opened.tokenizer.bosId);
      const secs = (performance.now() - started) / 1000;
      console.log(`${modelPath} on ${textPath}: perplexity ${r.perplexity.toFixed(4)} (mean NLL ${r.nll.toFixed(5)} nats) over ${r.scoredTokens} scored tokens in ${r.chunks} chunks of ${ctx}; ${secs.toFixed(1)} s on ${backendName}`);
      return 0;
    } catch (err) {
      console.error(`kiln perplexity: ${(err as Error).message}`);
      return 1;
    }
  },
};
