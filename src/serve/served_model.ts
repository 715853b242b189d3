// served_model.ts: a model as an engine serves it (the runnable model, its tokenizer, chat template and
// stop tokens, under an id) and the turning of a request's PromptInput into token ids plus the stop
// conditions the prompt implies, with the checks every engine applies before it queues a request
// (empty prompt, token ids outside the vocabulary, prompt + maxTokens over the context). It does not
// load models (src/models does) or schedule them.

import type { ChatTemplate } from "../models/chat_template.js";
import type { LanguageModel } from "../models/language_model.js";
import type { Tokenizer } from "../models/tokenizers/index.js";
import type { ModelCard, PromptInput } from "./engine_client.js";
import { EngineError } from "./engine_client.js";

export interface ServedModel {
  /** The name clients use ("model" in requests). */
  readonly id: string;
  readonly model: LanguageModel;
  readonly tokenizer: Tokenizer;
  /** The model's Jinja chat template; undefined: the default (ChatML). */
  readonly chatTemplate?: string;
  /** Ids that end generation (EOS, end-of-turn). */
  readonly stopTokenIds: readonly number[];
  /** Unix seconds; default: when the engine took it. */
  readonly created?: number;
}

export function modelCard(m: ServedModel, created: number): ModelCard {
  return { id: m.id, created: m.created ?? created, ownedBy: "kiln", maxModelLen: m.model.contextLength };
}

export interface EncodedPrompt {
  readonly ids: number[];
  /** Stop strings the prompt format adds (the default template's turn markers). */
  readonly stopStrings: readonly string[];
  /** Stop token ids: the model's plus the chat format's turn markers when they are tokens. */
  readonly stopTokenIds: readonly number[];
  /** Most tokens that may be generated: maxTokens, or what is left of the context. */
  readonly maxTokens: number;
}

/** ChatML's turn markers (the default template): stop strings when the vocabulary lacks them, stop tokens when it has them. */
const CHATML_MARKERS = ["<|im_end|>", "<|im_start|>"];

const invalid = (message: string, param: string) => new EngineError({ code: "invalid_request", message, param });

/** The most bytes of text one token of each tokenizer spells (special tokens as written), computed once. */
const longestToken = new WeakMap<Tokenizer, number>();

function maxTokenBytes(tok: Tokenizer): number {
  let n = longestToken.get(tok);
  if (n === undefined) {
    // NOTE: at least 4: an unknown character (one <unk> token) may be up to 4 bytes of UTF-8.
    n = 4;
    for (let id = 0; id < tok.vocabSize; id++) n = Math.max(n, tok.tokenBytes(id, true).length);
    longestToken.set(tok, n);
  }
  return n;
}

/**
 * Encode `text`, refusing first, without tokenizing, a text too long to fit the context whatever its
 * tokens: every token spells at most maxTokenBytes bytes of it, so at most as many UTF-16 units. NOTE: tokenizing runs on the event loop;
 * a 4 MiB prompt cost seconds of it (and /health waited) only to be refused for its length afterwards.
 */
function encodeBounded(m: ServedModel, text: string, what: "prompt" | "messages", encode: (text: string) => number[]): number[] {
  const context = m.model.contextLength;
  const perToken = maxTokenBytes(m.tokenizer);
  // NOTE: UTF-16 length, not Buffer.byteLength: it is a lower bound of the UTF-8 bytes, and measuring
  // the bytes of a rendered chat (a rope of concatenations) flattens it, 100 ms for 3.5 MB.
  const units = text.length;
  const atLeast = Math.ceil(units / perToken);
  if (atLeast >= context) {
    throw new EngineError({
      code: "context_length_exceeded", param: what,
      message: `model '${m.id}' has a context of ${context} tokens, but the ${what} ${what === "messages" ? "are" : "is"} ${units} characters of text, at least ${atLeast} tokens (a token spells at most ${perToken} characters); at most ${context - 1} tokens fit`,
    });
  }
  return encode(text);
}

function chatIds(m: ServedModel, template: ChatTemplate, prompt: Extract<PromptInput, { kind: "chat" }>): number[] {
  const tok = m.tokenizer;
  const special = (id: number | undefined) => (id === undefined ? "" : tok.tokenToPiece(id));
  const bos = special(tok.bosId);
  let text: string;
  try {
    text = template.render(prompt.messages, { bosToken: bos, eosToken: special(tok.eosId), addGenerationPrompt: true });
  } catch (err) {
    throw invalid(`model '${m.id}': ${(err as Error).message}`, "messages");
  }
  // NOTE: templates that write BOS themselves (Llama 2's) must not get a second one from encode().
  return encodeBounded(m, text, "messages", (t) => tok.encode(t, { allowSpecial: true, ...(bos !== "" && t.startsWith(bos) ? { addBos: false } : {}) }));
}

/**
 * Token ids and stop conditions of a prompt for model `m`; throws EngineError (invalid_request,
 * context_length_exceeded) naming the field and the lengths. `template` is m's compiled chat template;
 * ignoreEos leaves out the model's own stop tokens (the chat format's turn markers still stop).
 */
export function encodePrompt(m: ServedModel, template: ChatTemplate, prompt: PromptInput, maxTokens: number | undefined, ignoreEos = false): EncodedPrompt {
  const tok = m.tokenizer;
  // NOTE: the context the model holds, which may be less than the file's maxSeqLen (kv_cache.ts caps it).
  const context = m.model.contextLength;
  let ids: number[];
  const stopStrings: string[] = [];
  const stopTokenIds = ignoreEos ? [] : [...m.stopTokenIds];
  switch (prompt.kind) {
    case "text":
      if (prompt.text === "") throw invalid("the prompt is empty", "prompt");
      ids = encodeBounded(m, prompt.text, "prompt", (t) => tok.encode(t));
      break;
    case "tokens": {
      if (prompt.tokenIds.length === 0) throw invalid("the prompt has no tokens", "prompt");
      const vocab = m.model.config.vocabSize;
      const bad = prompt.tokenIds.findIndex((id) => !Number.isSafeInteger(id) || id < 0 || id >= vocab);
      if (bad >= 0) throw invalid(`prompt token ${bad} is ${prompt.tokenIds[bad]}, not a token id of model '${m.id}' (vocabulary of ${vocab})`, "prompt");
      ids = [...prompt.tokenIds];
      break;
    }
    case "chat":
      if (prompt.messages.length === 0) throw invalid("messages is empty", "messages");
      ids = chatIds(m, template, prompt);
      if (template.isDefault) {
        for (const s of CHATML_MARKERS) {
          const id = tok.specialTokens.get(s);
          if (id === undefined) stopStrings.push(s);
          else stopTokenIds.push(id);
        }
      }
      break;
    default:
      return assertNever(prompt);
  }
  const what = prompt.kind === "chat" ? "messages" : "prompt";
  if (ids.length >= context) {
    throw new EngineError({
      code: "context_length_exceeded", param: what,
      message: `model '${m.id}' has a context of ${context} tokens, but the ${what} ${prompt.kind === "chat" ? "are" : "is"} ${ids.length} tokens (at most ${context - 1}, to leave room for one generated token)`,
    });
  }
  if (maxTokens !== undefined) {
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) throw invalid(`maxTokens must be an integer >= 1, got ${maxTokens}`, "maxTokens");
    if (ids.length + maxTokens > context) {
      throw new EngineError({
        code: "context_length_exceeded", param: "maxTokens",
        message: `model '${m.id}' has a context of ${context} tokens, but ${ids.length + maxTokens} were requested (${ids.length} in the ${what}, ${maxTokens} to generate); lower max_tokens to at most ${context - ids.length}`,
      });
    }
  }
  return { ids, stopStrings, stopTokenIds: [...new Set(stopTokenIds)], maxTokens: maxTokens ?? context - ids.length };
}

function assertNever(x: never): never {
  throw new Error(`encodePrompt: unknown prompt kind ${JSON.stringify(x)}`);
}
