// chat_template.test.ts: rendering conversations with real published chat templates (Llama-2-chat's
// and ChatML as OpenHermes-2.5 ships it), the default template, reading templates and special-token
// strings from GGUF metadata and tokenizer_config.json, and the errors.

import { describe, expect, it } from "vitest";
import {
  DEFAULT_CHAT_TEMPLATE,
  chatTemplateFromMetadata,
  chatTemplateFromTokenizerConfig,
  compileChatTemplate,
  renderChat,
  specialTokenFromTokenizerConfig,
} from "../../src/models/chat_template.js";
import type { ChatMessage } from "../../src/models/chat_template.js";

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json "chat_template", as the JSON decodes it
// (its '\n' are escapes inside Jinja string literals).
const LLAMA2_CHAT = String.raw`{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`;

// teknium/OpenHermes-2.5-Mistral-7B tokenizer_config.json "chat_template" (ChatML), as the JSON decodes
// it: here the newlines are real newline characters inside the Jinja string literals.
const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const conversation: ChatMessage[] = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Hi!" },
  { role: "assistant", content: " Hello, how can I help? " },
  { role: "user", content: "Tell me a story." },
];

describe("chat templates", () => {
  it("render Llama-2-chat: system folded into the first turn, BOS per turn, EOS after replies", () => {
    const text = renderChat(LLAMA2_CHAT, conversation, { bosToken: "<s>", eosToken: "</s>" });
    expect(text).toBe(
      "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHi! [/INST] Hello, how can I help? </s>" +
        "<s>[INST] Tell me a story. [/INST]",
    );
    expect(renderChat(LLAMA2_CHAT, [{ role: "user", content: "Hello!" }], { bosToken: "<s>" })).toBe("<s>[INST] Hello! [/INST]");
  });

  it("report a template's raise_exception as an error naming the template", () => {
    const bad = [{ role: "user", content: "a" }, { role: "user", content: "b" }];
    expect(() => compileChatTemplate(LLAMA2_CHAT, "model.gguf tokenizer.chat_template").render(bad)).toThrow(
      /model\.gguf tokenizer\.chat_template: .*Conversation roles must alternate/,
    );
  });

  it("render ChatML, with and without the generation prompt", () => {
    const msgs = conversation.slice(0, 2);
    const body = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n";
    expect(renderChat(CHATML, msgs)).toBe(`${body}<|im_start|>assistant\n`);
    expect(renderChat(CHATML, msgs, { addGenerationPrompt: false })).toBe(body);
  });

  it("default to ChatML when the model has none", () => {
    const t = compileChatTemplate(undefined);
    expect(t.isDefault).toBe(true);
    expect(t.source).toBe(DEFAULT_CHAT_TEMPLATE);
    expect(t.render(conversation.slice(0, 2))).toBe(renderChat(CHATML, conversation.slice(0, 2)));
  });

  it("find the template in GGUF metadata and tokenizer_config.json", () => {
    expect(chatTemplateFromMetadata(new Map([["tokenizer.chat_template", CHATML]]))).toBe(CHATML);
    expect(chatTemplateFromMetadata(new Map())).toBeUndefined();
    expect(() => chatTemplateFromMetadata(new Map([["tokenizer.chat_template", 3]]))).toThrow("tokenizer.chat_template must be a string");

    const config = { chat_template: LLAMA2_CHAT, bos_token: { content: "<s>", lstrip: false }, eos_token: "</s>" };
    expect(chatTemplateFromTokenizerConfig(config)).toBe(LLAMA2_CHAT);
    expect(specialTokenFromTokenizerConfig(config, "bos_token")).toBe("<s>");
    expect(specialTokenFromTokenizerConfig(config, "eos_token")).toBe("</s>");
    const named = { chat_template: [{ name: "tool_use", template: "x" }, { name: "default", template: CHATML }] };
    expect(chatTemplateFromTokenizerConfig(named)).toBe(CHATML);
    expect(chatTemplateFromTokenizerConfig({})).toBeUndefined();
    expect(() => chatTemplateFromTokenizerConfig({ chat_template: 5 }, "cfg.json")).toThrow("cfg.json: chat_template must be a string");
  });

  it("reject bad messages and unparsable templates clearly", () => {
    expect(() => renderChat(undefined, [])).toThrow("messages must be a non-empty array");
    expect(() => renderChat(undefined, [{ role: "user", content: 3 as unknown as string }])).toThrow("messages[0].content must be a string");
    expect(() => compileChatTemplate("{% for x in %}", "tokenizer_config.json chat_template")).toThrow(
      "tokenizer_config.json chat_template: cannot parse the Jinja template",
    );
  });
});
