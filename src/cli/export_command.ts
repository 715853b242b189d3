// export_command.ts: `kiln export`: a training checkpoint's model as a folder inference tools open (a
// Hugging Face folder and/or model.gguf, with the run's tokenizer). It owns the flags, the report and
// the exit code; the export is src/train/export.

import { EXPORT_FORMATS, exportCheckpoint } from "../train/index.js";
import type { ExportFormat } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

const HELP = `Usage: kiln export --checkpoint DIR --out DIR [--format hf|gguf|both] [options]

Export the model of a training checkpoint for inference: a Hugging Face folder (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json) and/or a GGUF file
(model.gguf, tokenizer in its metadata), in one folder with export.json (size and sha256 of each
file). kiln generate --model and kiln serve --model open the folder (HF) or the .gguf file.
The folder appears only when complete; an earlier export there is replaced, any other folder is refused.

Options:
  --checkpoint DIR  a checkpoint folder (step-000123/) or a run's checkpoint folder (its newest good one)
  --out DIR         the folder to write
  --format F        hf, gguf or both (default both)
  --config FILE     the run's config file: where its data (and so its tokenizer) is; default: found
                    from the checkpoint's own copy of the config
  --tokenizer FILE  the tokenizer.json (or llama2.c .bin) the run's shards were prepared with, when it is
                    not beside their index.json (checked against the sha256 the index recorded)
  -h, --help        show this help

Example:
  kiln export --checkpoint runs/shakespeare/checkpoints --out runs/shakespeare/export
  kiln generate --model runs/shakespeare/export --prompt "ROMEO:" --temperature 0

Exit status: 0 on success, 1 when the checkpoint cannot be read or the folder cannot be written (the
message says which and why; nothing is left that looks like an export), 2 on a usage error.`;

export const exportCommand: Command = {
  name: "export",
  summary: "export a training checkpoint's model as a Hugging Face folder and/or GGUF",
  help: HELP,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      checkpoint: { type: "string" },
      out: { type: "string" },
      format: { type: "string" },
      config: { type: "string" },
      tokenizer: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    for (const flag of ["checkpoint", "out"] as const) if (values[flag] === undefined) throw new UsageError(`export: --${flag} is required`, this);
    const format = values.format ?? "both";
    if (format !== "both" && !EXPORT_FORMATS.includes(format as ExportFormat)) throw new UsageError(`export: --format must be hf, gguf or both, got '${format}'`, this);
    const formats = format === "both" ? EXPORT_FORMATS : [format as ExportFormat];
    try {
      const r = exportCheckpoint({
        checkpoint: values.checkpoint!, out: values.out!, formats,
        ...(values.config === undefined ? {} : { configFile: values.config }),
        ...(values.tokenizer === undefined ? {} : { tokenizer: values.tokenizer }),
        warn: (m) => console.error(`kiln export: ${m}`),
      });
      console.log(`exported ${r.checkpoint} (step ${r.step}) to ${r.dir}`);
      for (const f of r.files) console.log(`  ${f.name.padEnd(24)} ${String(f.bytes).padStart(10)} bytes  sha256 ${f.sha256}`);
      return 0;
    } catch (err) {
      const e = err as Error;
      console.error(`kiln export: ${e.message}`);
      if (process.env.KILN_DEBUG) console.error(e.stack);
      return 1;
    }
  },
};
