// http_fuzz_run.ts: sending one fuzz case (http_fuzz_cases.ts) to a running `kiln serve` over raw
// node:http, and judging the answer: no reset connection, no hang (an answer within a time bound), no
// 5xx; 413 for a body over the limit; 200 or 404 for a static path; a 4xx in OpenAI's error shape that names the offending field when the body was a JSON object;
// a 200 that is whole (JSON, or SSE ending in [DONE] without an error event) and whose logprob tokens
// spell its text. Shared by the fuzz test and the long run (bench/fuzz_http.ts).

import { request } from "node:http";
import type { FuzzCase } from "./http_fuzz_cases.js";

export interface FuzzAnswer {
  /** The HTTP status, or undefined when the connection failed (reset, timeout). */
  readonly status: number | undefined;
  readonly text: string;
  /** What went wrong below HTTP ("ECONNRESET", "timeout"). */
  readonly error?: string;
  readonly ms: number;
}

/** Send one case to `url` (http://127.0.0.1:port); never rejects. */
export function send(url: string, c: FuzzCase, timeoutMs: number): Promise<FuzzAnswer> {
  const t0 = performance.now();
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (a: Omit<FuzzAnswer, "ms">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...a, ms: performance.now() - t0 });
    };
    const req = request({
      // NOTE: a connection of its own (no agent): a reused socket would mix up one case's reset with the next one's.
      host: hostname, port, method: c.method ?? "POST", path: c.path, agent: false,
      headers: c.method === "GET" ? {} : { "Content-Type": "application/json", "Content-Length": c.body.length },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (b: Buffer) => parts.push(b));
      res.on("end", () => finish({ status: res.statusCode, text: Buffer.concat(parts).toString("utf8") }));
      res.on("error", (e: NodeJS.ErrnoException) => finish({ status: undefined, text: "", error: e.code ?? e.message }));
    });
    const timer = setTimeout(() => {
      finish({ status: undefined, text: "", error: "timeout" });
      req.destroy();
    }, timeoutMs);
    req.on("error", (e: NodeJS.ErrnoException) => finish({ status: undefined, text: "", error: e.code ?? e.message }));
    if (c.method === "GET") req.end();
    else req.end(c.body);
  });
}

export type Verdict = "ok" | "reset" | "hang" | "5xx" | "bad-4xx" | "bad-200";

export interface Judgement {
  readonly verdict: Verdict;
  readonly why?: string;
}

interface ErrorBody { message: string; type: string; param: string | null; code: string | null }

const bad = (verdict: Verdict, why: string): Judgement => ({ verdict, why });

function judgeError(c: FuzzCase, status: number, text: string): Judgement {
  let e: ErrorBody | undefined;
  try {
    e = (JSON.parse(text) as { error?: ErrorBody }).error;
  } catch {
    return bad("bad-4xx", `${status} without a JSON body: ${text.slice(0, 120)}`);
  }
  if (!e || typeof e.message !== "string" || typeof e.type !== "string" || !("param" in e) || !("code" in e)) return bad("bad-4xx", `${status} not in OpenAI's error shape: ${text.slice(0, 120)}`);
  // NOTE: a JSON object's validation errors must name their field; 413 (size) and 429 (load) are about the request as a whole.
  if (c.json && (status === 400 || status === 404)) {
    if (e.param === null) return bad("bad-4xx", `${status} names no field: ${e.message}`);
    const head = e.param.split(".")[0]!;
    const required = head === "model" || head === (c.path === "/v1/completions" ? "prompt" : "messages");
    if (!(head in c.json) && !required) return bad("bad-4xx", `${status} names '${e.param}', not a field of the request: ${e.message}`);
    if (!e.message.includes(head)) return bad("bad-4xx", `${status} param '${e.param}' but the message does not say it: ${e.message}`);
  }
  return { verdict: "ok" };
}

interface ChoiceText { text: string; tokens: string[] | undefined }

/** Each choice's text and, when logprobs were sent, its listed tokens. */
function choicesOf(c: FuzzCase, text: string): Map<number, ChoiceText> | string {
  const out = new Map<number, ChoiceText>();
  const add = (choice: Record<string, any>) => {
    const i = choice.index as number;
    const o = out.get(i) ?? { text: "", tokens: undefined };
    out.set(i, o);
    const piece = choice.text ?? choice.message?.content ?? choice.delta?.content ?? "";
    if (typeof piece !== "string") throw new Error(`choice ${i} text is ${typeof piece}`);
    o.text += piece;
    const lp = choice.logprobs;
    if (lp) o.tokens = [...(o.tokens ?? []), ...(lp.tokens ?? (lp.content as { token: string }[]).map((t) => t.token))];
  };
  try {
    if (!c.stream) {
      for (const ch of (JSON.parse(text) as { choices: Record<string, any>[] }).choices) add(ch);
      return out;
    }
    const events = text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.replace(/^data: /, ""));
    if (events.at(-1) !== "[DONE]") return "the stream does not end with [DONE]";
    for (const e of events.slice(0, -1)) {
      const j = JSON.parse(e) as { error?: ErrorBody; choices: Record<string, any>[] };
      if (j.error) return `error event: ${j.error.message}`;
      for (const ch of j.choices) add(ch);
    }
    return out;
  } catch (err) {
    return `unreadable 200: ${(err as Error).message}: ${text.slice(0, 120)}`;
  }
}

/** Whether the answer to `c` keeps the API's promises. */
export function judge(c: FuzzCase, a: FuzzAnswer): Judgement {
  if (a.status === undefined) return a.error === "timeout" ? bad("hang", `no answer in ${Math.round(a.ms)} ms`) : bad("reset", a.error ?? "connection failed");
  if (a.status >= 500) return bad("5xx", `${a.status}: ${a.text.slice(0, 200)}`);
  if (c.expectStatus !== undefined && a.status !== c.expectStatus) return bad(a.status === 200 ? "bad-200" : "bad-4xx", `${a.status}, not ${c.expectStatus}`);
  if (c.kind === "static") return a.status === 200 || a.status === 404 || a.status === 400 ? { verdict: "ok" } : bad("bad-4xx", `static path: ${a.status}`);
  if (a.status >= 400 && a.status < 500) return judgeError(c, a.status, a.text);
  if (a.status !== 200) return bad("bad-200", `status ${a.status}`);
  const choices = choicesOf(c, a.text);
  if (typeof choices === "string") return bad("bad-200", choices);
  if (choices.size === 0) return bad("bad-200", "no choices");
  for (const [i, ch] of choices) {
    if (ch.tokens && ch.tokens.join("") !== ch.text) return bad("bad-200", `choice ${i}: logprob tokens ${JSON.stringify(ch.tokens.join(""))} do not spell the text ${JSON.stringify(ch.text)}`);
  }
  return { verdict: "ok" };
}
