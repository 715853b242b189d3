// serve_faults_http.ts: the HTTP side of serve_faults.test.ts: posting raw or JSON bodies with fetch,
// reading a whole answer (JSON or SSE), checking OpenAI's error shape, raw sockets for clients that
// misbehave below fetch (a body cut short), and a bounded pool of workers for bursts. It does not
// start servers or engines (the test does).

import { connect } from "node:net";
import { expect } from "vitest";

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed body when it is JSON, else undefined. */
  readonly json: Record<string, any> | undefined;
}

export interface ApiErrorBody {
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

/** POST `body` (an object is sent as JSON; a string, bytes or a stream as they are) and read the whole answer. */
export async function post(url: string, path: string, body: object | string | Uint8Array | ReadableStream<Uint8Array>, init: RequestInit = {}): Promise<Answer> {
  const raw = typeof body === "string" || body instanceof Uint8Array || body instanceof ReadableStream ? body : JSON.stringify(body);
  const r = await fetch(url + path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: raw as BodyInit,
    signal: AbortSignal.timeout(30_000), ...(body instanceof ReadableStream ? { duplex: "half" } : {}), ...init,
  } as RequestInit);
  const text = await r.text();
  let json: Record<string, any> | undefined;
  try {
    json = JSON.parse(text) as Record<string, any>;
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** Expect OpenAI's error shape {error: {message, type, param, code}} with `status`; returns the error. */
export function expectApiError(a: Answer, status: number, code?: string | null, param?: string | null): ApiErrorBody {
  expect({ status: a.status, body: a.text.slice(0, 300) }).toMatchObject({ status });
  expect(a.headers.get("content-type")).toMatch(/^application\/json/);
  const e = a.json?.error as ApiErrorBody;
  expect(Object.keys(e).sort()).toEqual(["code", "message", "param", "type"]);
  expect(e.message).toMatch(/\S/);
  expect(typeof e.type).toBe("string");
  if (code !== undefined) expect(e.code).toBe(code);
  if (param !== undefined) expect(e.param).toBe(param);
  return e;
}

/** The data payloads of an SSE body, "[DONE]" included. */
export function sseEvents(text: string): string[] {
  return text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.replace(/^data: /, ""));
}

/** The completion text of a 200 answer, streamed (SSE) or not; fails on a stream without [DONE] or with an error event. */
export function completionText(a: Answer): string {
  expect(a.status).toBe(200);
  if (a.json) return (a.json.choices as { text?: string; message?: { content: string } }[]).map((c) => c.text ?? c.message?.content ?? "").join("");
  const events = sseEvents(a.text);
  expect(events.at(-1)).toBe("[DONE]");
  let text = "";
  for (const e of events.slice(0, -1)) {
    const j = JSON.parse(e) as { error?: unknown; choices: { text?: string; delta?: { content?: string } }[] };
    expect(j.error).toBeUndefined();
    for (const c of j.choices) text += c.text ?? c.delta?.content ?? "";
  }
  return text;
}

/**
 * Send the request line, headers and only part of a body over a raw socket, then drop the connection
 * (a client that dies while uploading). Resolves once the socket is closed.
 */
export function sendTruncated(port: number, path: string, declaredLength: number, partialBody: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${declaredLength}\r\n\r\n${partialBody}`);
      setTimeout(() => s.destroy(), 50);
    });
    s.on("error", reject);
    s.on("close", () => resolve());
  });
}

/** Run `task(i)` for i in [0, count) on `workers` concurrent workers (each one keeps at most one socket busy). */
export async function pool<T>(count: number, workers: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  }));
  return out;
}

/** Poll `cond` every 10 ms for at most `ms`; false when it never held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  for (let t = 0; t < ms; t += 10) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}
