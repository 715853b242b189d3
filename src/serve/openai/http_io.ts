// http_io.ts: the bytes on the wire for node:http: reading a JSON request body (size limit, strict
// UTF-8, JSON syntax, each failure an ApiError with the right status), writing a JSON response, and
// a server-sent-events stream (`data: ...\n\n` frames, `data: [DONE]`) that waits when the client
// reads slowly. It does not know the OpenAI schemas (protocol.ts) or routes (server.ts).

import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, badRequest } from "./errors.js";

const tooLarge = (message: string) =>
  new ApiError(413, message, "invalid_request_error", null, "request_too_large", { Connection: "close" });

/** The raw body, refused with 413 as soon as it is known to exceed `limit` bytes. */
function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(`the request body is ${declared} bytes, over the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (b: Buffer) => {
      size += b.length;
      if (size > limit) {
        cleanup();
        // NOTE: keep reading (and dropping) the rest, so the client gets the 413 instead of a reset connection.
        req.resume();
        reject(tooLarge(`the request body is over the limit of ${limit} bytes (${size} bytes received so far)`));
        return;
      }
      parts.push(b);
    };
    const onEnd = () => {
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

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The request body parsed as JSON; ApiError 413 over `limit` bytes, 400 for invalid UTF-8, an empty body or bad JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const bytes = await readBytes(req, limit);
  if (bytes.length === 0) throw badRequest("the request body is empty; send a JSON object");
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest(`the request body (${bytes.length} bytes) is not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
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
