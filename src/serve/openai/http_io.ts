// http_io.ts: the bytes on the wire for node:http: reading a JSON request body (size limit, strict
// UTF-8, JSON syntax, each failure an ApiError with the right status), writing a JSON response, and
// a server-sent-events stream (`data: ...\n\n` frames, `data: [DONE]`) that waits when the client
// reads slowly. It does not know the OpenAI schemas (protocol.ts) or routes (server.ts).

import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, badRequest } from "./errors.js";

const tooLarge = (message: string) =>
  new ApiError(413, message, "invalid_request_error", null, "request_too_large", { Connection: "close" });

/**
 * Most bytes read and dropped after a body is known to be over the limit, so that the client, still
 * uploading, reads the 413 instead of a reset connection; a larger upload gets its 413 at once.
 */
const DISCARD_BOUND = 64 * 1024 * 1024;

/**
 * The raw body, refused with 413 when it exceeds `limit` bytes. NOTE: the 413 is answered only once
 * the upload has ended (up to DISCARD_BOUND bytes read and dropped): answering while the client still
 * writes, then closing, makes its next write fail with a broken pipe or a reset, not the 413.
 */
function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  const declaredOver = Number.isFinite(declared) && declared > limit;
  if (declaredOver && declared > DISCARD_BOUND) {
    return Promise.reject(tooLarge(`the request body is ${declared} bytes, over the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = declaredOver;
    const refuse = (ended: boolean) => {
      cleanup();
      req.resume();
      const what = declaredOver ? `${declared} bytes` : ended ? `${size} bytes` : `more than ${size} bytes`;
      reject(tooLarge(`the request body is ${what}, over the limit of ${limit} bytes`));
    };
    const onData = (b: Buffer) => {
      size += b.length;
      if (size > limit && !over) {
        over = true;
        parts.length = 0;
      }
      if (!over) parts.push(b);
      else if (size > DISCARD_BOUND) refuse(false);
    };
    const onEnd = () => {
      if (over) return refuse(true);
      cleanup();
      resolve(Buffer.concat(parts, size));
    };
    const onError = (err: Error) => {
      cleanup();
      // NOTE: a client that leaves mid-upload is the client's doing, not a server fault to log.
      reject(new ApiError(400, `the client closed the connection before the whole body arrived (${size} bytes): ${err.message}`, "invalid_request_error", null, "incomplete_body"));
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** Bodies larger than this are decoded and parsed in heavy turns. */
const HEAVY_ABOVE = 256 * 1024;
let heavyQueue: Promise<unknown> = Promise.resolve();

/**
 * Run `fn` on a turn of its own: one heavy step at a time, each in a later turn of the event loop.
 * NOTE: decoding or parsing a 4 MiB body takes ~100 ms on a busy machine; four bodies that end
 * together would run back to back and hold /health for their sum, so they take turns with it.
 */
function heavyTurn<T>(fn: () => T): Promise<T> {
  const run = heavyQueue.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(fn);
  heavyQueue = run.catch(() => undefined);
  return run;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The request body parsed as JSON; ApiError 413 over `limit` bytes, 400 for invalid UTF-8, an empty body or bad JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const bytes = await readBytes(req, limit);
  if (bytes.length === 0) throw badRequest("the request body is empty; send a JSON object");
  const step = bytes.length > HEAVY_ABOVE ? heavyTurn : <T>(fn: () => T) => fn();
  let text: string;
  try {
    text = await step(() => utf8.decode(bytes));
  } catch {
    throw badRequest(`the request body (${bytes.length} bytes) is not valid UTF-8`);
  }
  try {
    return await step(() => JSON.parse(text) as unknown);
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** A server-sent-events response: each event is one `data: <json>` frame. */
export class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  start(): void {
    this.res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
      // NOTE: tells nginx-style proxies not to buffer the stream, or tokens arrive in bursts.
      "X-Accel-Buffering": "no",
    });
    this.res.flushHeaders();
  }

  /** Send one event; resolves when the socket can take more (or the client is gone). */
  send(data: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** The end-of-stream marker, then close the response. */
  done(): void {
    if (!this.res.destroyed) this.res.end("data: [DONE]\n\n");
  }

  private write(frame: string): Promise<void> {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return Promise.resolve();
    if (res.write(frame)) return Promise.resolve();
    return new Promise((resolve) => {
      const go = () => {
        res.off("drain", go);
        res.off("close", go);
        resolve();
      };
      res.on("drain", go);
      res.on("close", go);
    });
  }
}
