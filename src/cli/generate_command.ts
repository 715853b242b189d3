// generate_command.ts: `kiln generate`: load a model (a file, a folder or a built-in name), encode the
// prompt (optionally through the model's chat template), generate with the requested sampling, and
// stream the text to stdout as tokens come; prefill and decode speed go to stderr. It owns the flags,
// their validation and the streaming loop; loading, tokenizing, the model and sampling live in
// src/models.

import type { BackendName } from "../index.js";
import { BACKEND_NAMES, chooseBackend } from "../index.js";
import type { ChatMessage, OpenedModel, SamplingParams } from "../models/index.js";
import {
  SamplingParamError, StopChecker, compileChatTemplate, createDetokenizer, createSampler, fromLoaded, generate, openModel, validateSamplingParams,
} from "../models/index.js";
import { backendAskedBy, backendLine } from "./backend_line.js";
import type { Command } from "./command.js";
import { THREADS_HELP, THREADS_OPTION, UsageError, applyThreadsFlag, parseCommandArgs } from "./command.js";

export const DEFAULT_MODEL = "stories260K";
const DEFAULT_MAX_TOKENS = 256;

const HELP = `Usage: kiln generate --prompt TEXT [--model M] [options]

Generate text that continues a prompt and stream it to stdout as it is produced (the prompt first,
then the continuation; with --chat, only the reply). Prompt (prefill) and decode speed in tokens/s
go to stderr.

Model:
  --model M               a llama2.c .bin (its tok*.bin tokenizer next to it), a .gguf file, a Hugging
                          Face folder (config.json, tokenizer.json, *.safetensors), or a built-in name:
                          ${DEFAULT_MODEL} (default)
  --tokenizer FILE        the tokenizer instead of the model's own: a llama2.c tokenizer .bin or a
                          tokenizer.json
  --backend B             ${[...BACKEND_NAMES].reverse().join("|")}|auto (default: KILN_BACKEND, else auto)
  --threads N             ${THREADS_HELP}

Prompt:
  --prompt TEXT           the text to continue (required)
  --chat                  send the prompt as a user message through the model's chat template
                          (ChatML when the model has none) and print only the reply
  --system TEXT           a system message before it (needs --chat)

Sampling:
  --max-tokens N          most tokens to generate (default ${DEFAULT_MAX_TOKENS}; generation also stops at the end
                          of the model's context and at its end-of-sequence token)
  --temperature T         0 = greedy (always the most likely token); default 1
  --top-k K               keep the K most likely tokens (0 = off, default)
  --top-p P               keep the most likely tokens up to probability mass P, in (0, 1] (default 1 = off)
  --min-p P               drop tokens below P times the most likely one's probability (default 0 = off)
  --repeat-penalty R      penalise tokens already in the prompt or output (llama.cpp style; 1 = off)
  --presence-penalty X    OpenAI-style penalties over the same tokens, in [-2, 2] (default 0)
  --frequency-penalty X
  --seed N                seed of the random draws (default: random, printed to stderr); the same seed
                          gives the same text on every backend
  --stop TEXT             stop when the output contains TEXT (repeatable); TEXT is not printed

  -h, --help              show this help

Exit status: 0 on success, 1 when the model cannot be loaded or run (the message says why), 2 on a
usage error.`;

/** Flags of kiln generate, by the sampling field they set. */
const SAMPLING_FLAGS = {
  temperature: "--temperature",
  topK: "--top-k",
  topP: "--top-p",
  minP: "--min-p",
  repetitionPenalty: "--repeat-penalty",
  presencePenalty: "--presence-penalty",
  frequencyPenalty: "--frequency-penalty",
  seed: "--seed",
} as const satisfies Partial<Record<keyof SamplingParams, string>>;

export interface GenerateArgs {
  readonly model: string;
  readonly tokenizer?: string;
  readonly prompt: string;
  readonly backend: BackendName | "auto" | undefined;
  readonly chat: boolean;
  readonly system?: string;
  readonly maxTokens: number;
  /** Sampling parameters as given (validated; the seed filled in when none was given). */
  readonly sampling: SamplingParams;
  readonly stop: readonly string[];
}

const OPTIONS = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  prompt: { type: "string" },
  backend: { type: "string" },
  chat: { type: "boolean" },
  system: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "presence-penalty": { type: "string" },
  "frequency-penalty": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  ...THREADS_OPTION,
  help: { type: "boolean", short: "h" },
} as const;

/** A number flag: a decimal number (integers where asked), never "", "1x" or "0x10". */
function parseNumber(cmd: Command, flag: string, text: string, integer: boolean): number {
  const ok = integer ? /^[+-]?\d+$/.test(text) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text);
  if (!ok) throw new UsageError(`generate: ${flag} must be ${integer ? "an integer" : "a number"}, got '${text}'`, cmd);
  return Number(text);
}

/** Read and validate every flag; throws UsageError naming the flag. Returns undefined for --help. */
export function parseGenerateArgs(cmd: Command, argv: readonly string[]): GenerateArgs | undefined {
  const { values: v } = parseCommandArgs(cmd, argv, OPTIONS);
  if (v.help) return undefined;
  if (v.prompt === undefined) throw new UsageError("generate: --prompt is required", cmd);
  if (v.prompt === "") throw new UsageError("generate: --prompt must not be empty", cmd);
  if (v.system !== undefined && !v.chat) throw new UsageError("generate: --system needs --chat", cmd);
  const backend = v.backend as BackendName | "auto" | undefined;
  if (backend !== undefined && backend !== "auto" && !BACKEND_NAMES.includes(backend)) {
    throw new UsageError(`generate: --backend must be one of ${[...BACKEND_NAMES, "auto"].join(", ")}, got '${backend}'`, cmd);
  }
  // NOTE: applied here, before any backend starts (the cpu backend reads KILN_THREADS once).
  applyThreadsFlag(cmd, v.threads);
  const maxTokens = v["max-tokens"] === undefined ? DEFAULT_MAX_TOKENS : parseNumber(cmd, "--max-tokens", v["max-tokens"], true);
  if (maxTokens < 1) throw new UsageError(`generate: --max-tokens must be >= 1, got ${maxTokens}`, cmd);
  const stop = v.stop ?? [];
  if (stop.some((s) => s === "")) throw new UsageError("generate: --stop must not be empty", cmd);

  const sampling: Record<string, number> = {};
  for (const [field, flag] of Object.entries(SAMPLING_FLAGS)) {
    const text = v[flag.slice(2) as keyof typeof v] as string | undefined;
    if (text !== undefined) sampling[field] = parseNumber(cmd, flag, text, field === "topK" || field === "seed");
  }
  let resolved;
  try {
    resolved = validateSamplingParams(sampling);
  } catch (err) {
    if (!(err instanceof SamplingParamError)) throw err;
    const flag = SAMPLING_FLAGS[err.field as keyof typeof SAMPLING_FLAGS] ?? err.field;
    throw new UsageError(`generate: ${flag} ${err.requirement}, got ${String(err.value)}`, cmd);
  }
  return {
    model: v.model ?? DEFAULT_MODEL,
    ...(v.tokenizer === undefined ? {} : { tokenizer: v.tokenizer }),
    prompt: v.prompt,
    backend,
    chat: v.chat ?? false,
    ...(v.system === undefined ? {} : { system: v.system }),
    maxTokens,
    sampling: { ...sampling, seed: resolved.seed },
    stop,
  };
}

/** ChatML's turn markers: stop strings when the default template is used with a vocabulary that lacks them. */
const CHATML_MARKERS = ["<|im_end|>", "<|im_start|>"];

interface Prompt {
  readonly ids: number[];
  /** Extra stop strings (the chat template's turn markers). */
  readonly stop: readonly string[];
}

/** The prompt's token ids: the text itself, or (--chat) the conversation rendered by the chat template. */
function encodePrompt(m: OpenedModel, args: GenerateArgs): Prompt {
  const tok = m.tokenizer;
  if (!args.chat) return { ids: tok.encode(args.prompt), stop: [] };
  const messages: ChatMessage[] = [
    ...(args.system === undefined ? [] : [{ role: "system", content: args.system }]),
    { role: "user", content: args.prompt },
  ];
  const template = compileChatTemplate(m.chatTemplate, m.chatTemplateOrigin);
  const special = (id: number | undefined) => (id === undefined ? "" : tok.tokenToPiece(id));
  const bos = special(tok.bosId);
  const text = template.render(messages, { bosToken: bos, eosToken: special(tok.eosId), addGenerationPrompt: true });
  // NOTE: templates that write BOS themselves (Llama 2's) must not get a second one from encode().
  const ids = tok.encode(text, { allowSpecial: true, ...(bos !== "" && text.startsWith(bos) ? { addBos: false } : {}) });
  return { ids, stop: template.isDefault ? CHATML_MARKERS.filter((s) => !tok.specialTokens.has(s)) : [] };
}

const rate = (n: number, ms: number): string => (n > 0 && ms > 0 ? `${((n * 1000) / ms).toFixed(1)} tokens/s` : "-");

async function runGenerate(args: GenerateArgs): Promise<number> {
  const opened = openModel(args.model, args.tokenizer);
  const { loaded, tokenizer } = opened;
  const prompt = encodePrompt(opened, args);
  const context = loaded.config.maxSeqLen;
  if (prompt.ids.length > context) {
    throw new Error(`the prompt is ${prompt.ids.length} tokens, longer than the model's context of ${context} tokens`);
  }
  const stopTokens = [...opened.stopTokenIds, ...(args.chat ? CHATML_MARKERS.map((s) => tokenizer.specialTokens.get(s)) : [])];
  const stop = new StopChecker({
    maxTokens: args.maxTokens,
    stopTokenIds: stopTokens.filter((id): id is number => id !== undefined),
    stopStrings: [...args.stop, ...prompt.stop],
  });
  const sampler = createSampler(args.sampling);
  const chosen = await chooseBackend(args.backend);
  const backend = chosen.backend;
  console.error(`kiln generate: ${backendLine(chosen, backendAskedBy(args.backend))}`);
  const model = fromLoaded(loaded, backend);
  const mode = sampler.params.temperature === 0 ? "greedy" : `seed ${sampler.params.seed}`;
  console.error(`kiln generate: ${loaded.source} (${loaded.config.arch}) on ${backend.name} (${backend.info.device}), ${mode}`);

  const out = (text: string) => void (text && process.stdout.write(text));
  const detok = createDetokenizer(tokenizer);
  // NOTE: the prompt goes through the same detokenizer, so prompt and continuation read as one text
  // (the space SentencePiece puts before the first word is dropped once, at the very start). A chat
  // reply is printed alone, as a text of its own.
  if (!args.chat) out(prompt.ids.map((id) => detok.push(id)).join(""));
  let stoppedByToken = false;
  let generated = 0;
  const t0 = performance.now();
  let tFirst = NaN;
  const tokens = generate(model, prompt.ids, {
    maxTokens: args.maxTokens,
    sample: (logits, history) => sampler.sample(logits, history).id,
    isStop: (id) => (stoppedByToken = stop.isStopToken(id)),
  });
  let cut = false; // a stop string ended the text
  for await (const id of tokens) {
    if (generated++ === 0) tFirst = performance.now();
    const step = stop.step(id, detok.push(id));
    out(step.text);
    if (step.finish) {
      // NOTE: generate() never yields a stop token, so a "stop" here is a stop string.
      cut = step.finish === "stop";
      break;
    }
  }
  const tEnd = performance.now();
  if (generated === 0) tFirst = tEnd;
  if (stop.finishReason === undefined) out(stop.end(stoppedByToken ? "stop" : "length").text);
  // NOTE: an incomplete UTF-8 character left at the end prints as U+FFFD, unless a stop string cut the text.
  if (!cut) out(detok.flush());
  out("\n");

  const decodeSteps = model.position - prompt.ids.length;
  const full = stop.finishReason === "length" && generated < args.maxTokens ? ` (the context of ${context} tokens is full)` : "";
  console.error(
    `prompt: ${prompt.ids.length} tokens, ${(tFirst - t0).toFixed(0)} ms, ${rate(prompt.ids.length, tFirst - t0)} | ` +
      `decode: ${decodeSteps} tokens, ${(tEnd - tFirst).toFixed(0)} ms, ${rate(decodeSteps, tEnd - tFirst)} | ` +
      `generated ${generated} tokens, finish: ${stop.finishReason}${full}`,
  );
  model.dispose();
  return 0;
}

export const generateCommand: Command = {
  name: "generate",
  summary: "generate text from a prompt with a model (a file, a folder or a built-in name), streaming it",
  help: HELP,
  async run(argv) {
    const args = parseGenerateArgs(this, argv);
    if (!args) {
      console.log(HELP);
      return 0;
    }
    try {
      return await runGenerate(args);
    } catch (err) {
      // NOTE: a model that cannot be loaded or run is not a usage error: its message says what is wrong
      // (file and field); the stack helps only when debugging kiln itself.
      const e = err as Error;
      console.error(`kiln generate: ${process.env.KILN_DEBUG ? (e.stack ?? e.message) : e.message}`);
      return 1;
    }
  },
};
