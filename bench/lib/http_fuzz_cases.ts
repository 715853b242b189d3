// http_fuzz_cases.ts: fast-check generators of HTTP requests to the OpenAI API of `kiln serve`, for the
// fuzz test (test/unit/fuzz_http.test.ts) and the long run (bench/fuzz_http.ts): request bodies for
// /v1/completions and /v1/chat/completions built from the real field list with any fields replaced by
// wrong types, huge, negative, fractional or non-finite numbers, long or odd strings and unknown
// fields; malformed JSON; invalid UTF-8 spliced into a string; bodies over the limit; GETs of odd
// static paths. Generation stays short: the token
// limits only ever take tiny valid values (or invalid ones), so a case costs milliseconds of model time.

import fc from "fast-check";

export type FuzzPath = "/v1/completions" | "/v1/chat/completions";

/** The body limit the fuzzed server is started with: "oversized" cases go over it. */
export const FUZZ_MAX_BODY = 256 * 1024;

export interface FuzzCase {
  readonly method?: "GET";
  readonly path: string;
  /** What kind of mutation made it (for the report). */
  readonly kind: "fields" | "malformed-json" | "invalid-utf8" | "oversized" | "static";
  /** The one status the answer must have, when there is one (413 for an oversized body). */
  readonly expectStatus?: number;
  readonly body: Uint8Array;
  /** The request as an object when the body is a JSON object; undefined for malformed bodies. */
  readonly json: Record<string, unknown> | undefined;
  /** Whether a 200 is an SSE stream. */
  readonly stream: boolean;
}

/** A JSON literal written as is: numbers JSON.stringify cannot write (1e999, -0, 1.0). */
class RawLiteral {
  constructor(readonly text: string) {}
}

const SAMPLING_FIELDS = [
  "model", "max_tokens", "n", "temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty",
  "repetition_penalty", "logit_bias", "stop", "stream", "stream_options", "user", "ignore_eos", "tier",
] as const;
export const COMPLETION_FIELDS = [...SAMPLING_FIELDS, "prompt", "logprobs", "echo", "best_of", "suffix"] as const;
export const CHAT_FIELDS = [
  ...SAMPLING_FIELDS, "messages", "max_completion_tokens", "logprobs", "top_logprobs", "tools", "tool_choice", "functions",
  "function_call", "response_format",
] as const;

const raw = (t: string) => new RawLiteral(t);

/** Values of every JSON type, with the edges numbers and strings have. */
const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1, 2, 1.5, -0.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 1e-300, -(2 ** 31), 16, 17, 20, 21, 100,
    "", "0", "1", "NaN", "Infinity", "-1", "stories260K", "text", [], {}, [1], ["a"], [[1]], [[]], [""], { a: 1 }, { type: "text" },
    "\u0000", "\ud800", "\ufffd", "<unk>", "<s>", "</s>", "<|im_end|>",
    raw("1e999"), raw("-1e999"), raw("-0"), raw("1.0"), raw("1E2"), raw("0.0000001"), raw("123456789012345678901234567890"),
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.nat({ max: 200_000 }).map((n) => "Once upon a time ".repeat(Math.ceil(n / 17)).slice(0, n)),
  fc.array(fc.oneof(fc.integer({ min: -5, max: 600 }), fc.string({ maxLength: 8 })), { maxLength: 20 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), fc.constant(null)), { maxKeys: 4 }),
);

/** Token limits: tiny valid values or invalid ones, never one that asks for a long generation. */
const tokenLimit = fc.oneof(
  fc.integer({ min: 1, max: 4 }),
  fc.constantFrom<unknown>(0, -1, 1.5, 511, 512, 513, 1e9, 2 ** 53, -(2 ** 53), "2", true, [], {}, raw("1e999"), raw("2.0")),
);

/** Values that mostly pass the schema, so cases reach the engine, not only the validator. */
const plausible: Partial<Record<string, fc.Arbitrary<unknown>>> = {
  n: fc.integer({ min: 1, max: 17 }),
  temperature: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
  top_p: fc.double({ min: 0.001, max: 1, noNaN: true }),
  top_k: fc.integer({ min: -1, max: 600 }),
  min_p: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.nat(),
  logit_bias: fc.dictionary(fc.integer({ min: 0, max: 600 }).map(String), fc.integer({ min: -100, max: 100 }), { maxKeys: 4 }),
  stop: fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 17 })),
  stream: fc.boolean(),
  logprobs: fc.oneof(fc.integer({ min: 0, max: 21 }), fc.boolean()),
  top_logprobs: fc.integer({ min: 0, max: 21 }),
  ignore_eos: fc.boolean(),
  presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  repetition_penalty: fc.double({ min: 0.5, max: 2, noNaN: true }),
  user: fc.string({ maxLength: 20 }),
  tier: fc.constantFrom("interactive", "standard", "batch", "gold"),
  stream_options: fc.record({ include_usage: fc.boolean() }),
  echo: fc.constantFrom(false, null, true),
  best_of: fc.constantFrom(1, 2, null),
  suffix: fc.constantFrom(null, "", "The end."),
  response_format: fc.constantFrom({ type: "text" }, { type: "json_object" }, null),
  tool_choice: fc.constantFrom("none", "auto", null),
  tools: fc.constantFrom([], null, [{ type: "function" }]),
  functions: fc.constantFrom([], null),
  function_call: fc.constantFrom("none", null),
  prompt: fc.oneof(
    fc.string({ minLength: 1, maxLength: 60 }),
    fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 17 }),
    fc.array(fc.integer({ min: 0, max: 520 }), { minLength: 1, maxLength: 40 }),
    fc.array(fc.array(fc.integer({ min: 0, max: 511 }), { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 }),
  ),
  messages: fc.array(
    fc.record({
      role: fc.constantFrom("system", "developer", "user", "assistant", "tool", "robot"),
      content: fc.oneof(fc.string({ maxLength: 60 }), fc.constant(null), fc.array(fc.record({ type: fc.constantFrom("text", "image_url"), text: fc.string({ maxLength: 20 }) }), { maxLength: 3 })),
    }),
    { minLength: 0, maxLength: 4 },
  ),
};

const valueFor = (field: string): fc.Arbitrary<unknown> =>
  field === "max_tokens" || field === "max_completion_tokens" ? tokenLimit
  : plausible[field] ? fc.oneof({ arbitrary: plausible[field]!, weight: 3 }, { arbitrary: weird, weight: 1 })
  : weird;

/** JSON text with RawLiteral values written as they are. */
export function serialize(v: unknown): string {
  const literals: string[] = [];
  const text = JSON.stringify(v, (_k, x: unknown) => (x instanceof RawLiteral ? `\u0001raw${literals.push(x.text) - 1}\u0001` : x));
  return text.replace(/"\\u0001raw(\d+)\\u0001"/g, (_m, i: string) => literals[Number(i)]!);
}

function base(path: FuzzPath): Record<string, unknown> {
  return path === "/v1/completions"
    ? { model: "stories260K", prompt: "Once upon a time", max_tokens: 2 }
    : { model: "stories260K", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 2 };
}

const pathArb = fc.constantFrom<FuzzPath>("/v1/completions", "/v1/chat/completions");

/** A body from the field list, `fields` of them replaced, maybe with unknown fields. */
const fieldsCase: fc.Arbitrary<FuzzCase> = pathArb.chain((path) => {
  const names = path === "/v1/completions" ? COMPLETION_FIELDS : CHAT_FIELDS;
  const entries = fc.uniqueArray(fc.constantFrom(...names), { minLength: 1, maxLength: 5 }).chain((fields) =>
    fc.tuple(...fields.map((f) => valueFor(f).map((v) => [f, v] as const))));
  const unknown = fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), weird, { maxKeys: 2 }), { nil: undefined });
  return fc.tuple(entries, unknown).map(([pairs, extra]) => {
    const body: Record<string, unknown> = { ...base(path), ...extra };
    for (const [f, v] of pairs) body[f] = v;
    const text = serialize(body);
    // NOTE: what the server sees is what JSON.parse makes of the text (1e999 -> Infinity, duplicate keys -> the last).
    const json = JSON.parse(text) as Record<string, unknown>;
    return { path, kind: "fields" as const, body: new TextEncoder().encode(text), json, stream: json.stream === true };
  });
});

/** A valid body broken as text: cut, a character inserted or deleted, or replaced by junk. */
const malformedCase: fc.Arbitrary<FuzzCase> = fc.tuple(pathArb, fc.nat(), fc.constantFrom("cut", "insert", "delete", "junk", "nest", "empty"), fc.string({ minLength: 1, maxLength: 3 }))
  .map(([path, at, how, s]) => {
    const good = serialize(base(path));
    const i = at % good.length;
    const text =
      how === "cut" ? good.slice(0, i)
      : how === "insert" ? good.slice(0, i) + s + good.slice(i)
      : how === "delete" ? good.slice(0, i) + good.slice(i + 1)
      : how === "nest" ? "[".repeat(1 + (at % 100_000)) + "]".repeat(at % 3)
      : how === "empty" ? ""
      : s;
    let json: Record<string, unknown> | undefined;
    try {
      const v = JSON.parse(text) as unknown;
      json = typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      json = undefined;
    }
    return { path, kind: "malformed-json" as const, body: new TextEncoder().encode(text), json, stream: json?.stream === true };
  })
  // NOTE: a body still valid without its token limit ("ax_tokens") asks for the whole context: seconds, not a fault.
  .filter((c) => c.json === undefined || "max_tokens" in c.json);

/** Bytes that are not UTF-8 (a stray continuation, a cut sequence, an overlong form, a surrogate) inside the prompt or a message. */
const invalidUtf8Case: fc.Arbitrary<FuzzCase> = fc.tuple(
  pathArb,
  fc.constantFrom([0xff], [0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]),
).map(([path, bad]) => {
  const text = serialize(base(path));
  const at = text.indexOf(path === "/v1/completions" ? "Once" : "Tell") + 2;
  const head = new TextEncoder().encode(text.slice(0, at));
  const tail = new TextEncoder().encode(text.slice(at));
  return { path, kind: "invalid-utf8" as const, body: new Uint8Array([...head, ...bad, ...tail]), json: undefined, stream: false };
});

/** A body over the limit (up to 4 times it), with its Content-Length: 413, never a reset connection. */
const oversizedCase: fc.Arbitrary<FuzzCase> = fc.tuple(pathArb, fc.integer({ min: FUZZ_MAX_BODY + 1, max: 4 * FUZZ_MAX_BODY }))
  .map(([path, size]) => ({ path, kind: "oversized" as const, expectStatus: 413, body: new Uint8Array(size).fill(0x20), json: undefined, stream: false }));

/** GET of a path outside the API (the static files): through a file, escaping the folder, odd encodings. */
const staticCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  fc.constantFrom("/", "/index.html", "/index.html/x", "/index.html/", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%00", "/%ff", "/%", "/bench", "/assets/", "/a/b/c", "//", "/index.html%00.js", "/.", "/..", "/nul"),
  fc.array(fc.constantFrom("a", ".", "..", "%", "%2f", "%00", "index.html", "x", "~", " ", "\\"), { minLength: 1, maxLength: 8 }).map((p) => "/" + p.join("/")),
  fc.nat({ max: 5000 }).map((n) => "/" + "x".repeat(n)),
).map((path) => ({ method: "GET" as const, path: path.replaceAll(" ", "%20"), kind: "static" as const, body: new Uint8Array(0), json: undefined, stream: false }));

/** Any fuzz case: mostly field mutations; malformed JSON, invalid UTF-8, bodies over the limit, static paths. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  { arbitrary: fieldsCase, weight: 16 },
  { arbitrary: malformedCase, weight: 2 },
  { arbitrary: invalidUtf8Case, weight: 2 },
  { arbitrary: oversizedCase, weight: 1 },
  { arbitrary: staticCase, weight: 1 },
);
