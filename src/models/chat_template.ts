// chat_template.ts: turning a conversation (role + content messages) into the prompt text a chat model
// was trained on, by rendering the model's own Jinja chat template (GGUF `tokenizer.chat_template`,
// Hugging Face tokenizer_config.json `chat_template`) with @huggingface/jinja, or a default (ChatML)
// when the model has none. It owns finding the template and its special-token strings in metadata and
// rendering; it does not tokenize the result (the caller encodes it, with special tokens parsed).

import { Template } from "@huggingface/jinja";
import type { MetaValue } from "./types.js";

export interface ChatMessage {
  /** "system", "user", "assistant" (some templates know others, e.g. "tool"). */
  readonly role: string;
  readonly content: string;
}

export interface ChatRenderOptions {
  /** The text of the BOS token, as templates insert it themselves (e.g. "<s>"). Default "". */
  readonly bosToken?: string;
  readonly eosToken?: string;
  /** End with the start of an assistant turn, so the model writes the reply. Default true. */
  readonly addGenerationPrompt?: boolean;
}

/**
 * The template used when a model has none: ChatML. NOTE: a base model (stories260K) follows no chat
 * format at all, so no default is "right" for it; ChatML is what most chat fine-tunes without a
 * stored template were trained on, and llama.cpp falls back to it too, so the same model gives the
 * same prompt in both. Its markers are plain text for a vocabulary that lacks them.
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** A parsed template, reusable across requests. */
export interface ChatTemplate {
  /** The Jinja source. */
  readonly source: string;
  /** True when the model had no template and the default is used. */
  readonly isDefault: boolean;
  render(messages: readonly ChatMessage[], options?: ChatRenderOptions): string;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new Error("chat: messages must be a non-empty array");
  messages.forEach((m, i) => {
    if (typeof m?.role !== "string" || m.role === "") throw new Error(`chat: messages[${i}].role must be a non-empty string`);
    if (typeof m.content !== "string") throw new Error(`chat: messages[${i}].content must be a string (role ${m.role})`);
  });
}

/** Parse a chat template (undefined: the default). `origin` names where it came from, for errors. */
export function compileChatTemplate(source: string | undefined, origin = "chat template"): ChatTemplate {
  const text = source ?? DEFAULT_CHAT_TEMPLATE;
  let template: Template;
  try {
    template = new Template(text);
  } catch (err) {
    throw new Error(`${origin}: cannot parse the Jinja template: ${(err as Error).message}`);
  }
  return {
    source: text,
    isDefault: source === undefined,
    render(messages, options = {}) {
      checkMessages(messages);
      try {
        return template.render({
          // NOTE: plain objects: templates index them as message['role'] and message.content.
          messages: messages.map((m) => ({ ...m })),
          bos_token: options.bosToken ?? "",
          eos_token: options.eosToken ?? "",
          add_generation_prompt: options.addGenerationPrompt ?? true,
        });
      } catch (err) {
        // NOTE: raise_exception(...) in a template (e.g. "roles must alternate") lands here too.
        throw new Error(`${origin}: ${(err as Error).message}`);
      }
    },
  };
}

/** Render a conversation with a template (undefined: the default ChatML one). */
export function renderChat(template: string | undefined, messages: readonly ChatMessage[], options?: ChatRenderOptions): string {
  return compileChatTemplate(template).render(messages, options);
}

/** GGUF metadata's `tokenizer.chat_template`, if any. */
export function chatTemplateFromMetadata(metadata: ReadonlyMap<string, MetaValue>): string | undefined {
  const t = metadata.get("tokenizer.chat_template");
  if (t === undefined) return undefined;
  if (typeof t !== "string") throw new Error(`GGUF metadata: tokenizer.chat_template must be a string, got ${typeof t}`);
  return t;
}

/**
 * tokenizer_config.json's `chat_template`: a string, or a list of named templates ({name, template},
 * as multi-template models store it), of which "default" is the chat one.
 */
export function chatTemplateFromTokenizerConfig(config: Readonly<Record<string, unknown>>, source = "tokenizer_config.json"): string | undefined {
  const t = config.chat_template;
  if (t === undefined || t === null) return undefined;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const found = named.find((e) => e?.name === "default") ?? named[0];
    if (typeof found?.template === "string") return found.template;
  }
  throw new Error(`${source}: chat_template must be a string or a list of {name, template}`);
}

/** A special token's text from tokenizer_config.json (`"<s>"`, or an AddedToken `{content: "<s>", ...}`). */
export function specialTokenFromTokenizerConfig(config: Readonly<Record<string, unknown>>, key: "bos_token" | "eos_token"): string | undefined {
  const v = config[key];
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}
