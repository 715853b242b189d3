// quantize_command.ts: `kiln quantize IN OUT --type q8_0|q4_0|q4_k`: a model kiln reads (llama2.c, GGUF, a
// Hugging Face folder, a built-in name) written as a quantized GGUF that llama.cpp reads, tokenizer
// included. It is `kiln convert --to gguf --type T` under the name llama.cpp users know; the writing is convert's.

import type { Command } from "./command.js";
import { UsageError, parseCommandArgsWithPositionals } from "./command.js";
import { convert } from "./convert_command.js";

const TYPES = ["q8_0", "q4_0", "q4_k"] as const;

const HELP = `Usage: kiln quantize IN OUT --type q8_0|q4_0|q4_k [--tokenizer FILE]

Write IN (a llama2.c .bin, a .gguf, a Hugging Face folder or a built-in name; f32/f16/bf16 weights) as a
GGUF file whose 2-D weights are Q8_0, Q4_0 or Q4_K blocks (as llama.cpp stores them; a matrix whose rows
are not whole blocks stays f16, or Q8_0 for Q4_K rows that are whole 32s but not 256s; norms stay f32). kiln computes on these blocks in place when it loads
the file (docs/quantization.md).

Options:
  --type T          q8_0 (8-bit, one f16 scale per 32 weights), q4_0 (4-bit, one f16 scale per 32) or
                    q4_k (4-bit super-blocks of 256: 6-bit scale and min per 32, f16 d and dmin)
  --tokenizer FILE  the tokenizer to include (default: the model's own)
  -h, --help        show this help

Example:
  kiln quantize stories260K stories260K-q8_0.gguf --type q8_0

Exit status: 0 on success, 1 when the model cannot be read or written, 2 on a usage error.`;

export const quantizeCommand: Command = {
  name: "quantize",
  summary: "write a model as a Q8_0, Q4_0 or Q4_K GGUF (llama.cpp reads it; kiln computes on it in place)",
  help: HELP,
  async run(argv) {
    const parsed = parseCommandArgsWithPositionals(this, argv, { type: { type: "string" }, tokenizer: { type: "string" }, help: { type: "boolean", short: "h" } });
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new UsageError(`quantize: give IN and OUT (got ${positionals.length} paths)`, this);
    const type = values.type;
    if (type === undefined) throw new UsageError(`quantize: --type is required (one of ${TYPES.join(", ")})`, this);
    if (!(TYPES as readonly string[]).includes(type)) throw new UsageError(`quantize: --type must be one of ${TYPES.join(", ")}, got '${type}'`, this);
    try {
      convert(positionals[0]!, "gguf", type, positionals[1]!, values.tokenizer);
      return 0;
    } catch (err) {
      console.error(`kiln quantize: ${(err as Error).message}`);
      return 1;
    }
  },
};
