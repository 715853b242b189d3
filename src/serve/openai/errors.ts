// errors.ts: errors as the OpenAI API reports them: an HTTP status, extra headers (Retry-After,
// WWW-Authenticate) and the body {error: {message, type, param, code}}; and the mapping from an
// engine's EngineError to that. It does not decide which requests are bad (the handlers do).

import type { EngineError, EngineErrorCode } from "../engine_client.js";

export type ApiErrorType = "invalid_request_error" | "rate_limit_error" | "server_error";

export interface ApiErrorBody {
  readonly error: { readonly message: string; readonly type: ApiErrorType; readonly param: string | null; readonly code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);

export const notFound = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(404, message, "invalid_request_error", param, code);

export const unavailable = (message: string, retryAfterS: number) =>
  new ApiError(503, message, "server_error", null, "service_unavailable", { "Retry-After": String(retryAfterS) });

/** HTTP status and OpenAI error type/code of each engine error kind. */
const ENGINE_STATUS: Readonly<Record<EngineErrorCode, { status: number; type: ApiErrorType; code: string | null }>> = {
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  context_length_exceeded: { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
  model_not_found: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  queue_full: { status: 429, type: "rate_limit_error", code: "queue_full" },
  queue_timeout: { status: 503, type: "server_error", code: "queue_timeout" },
  unavailable: { status: 503, type: "server_error", code: "service_unavailable" },
  internal: { status: 500, type: "server_error", code: null },
};

/** The API error for an engine error; `param` turns the engine's field name into the request's. */
export function fromEngineError(err: EngineError, param: (engineParam: string) => string): ApiError {
  const s = ENGINE_STATUS[err.code];
  const headers: Record<string, string> = err.retryAfterS === undefined ? {} : { "Retry-After": String(Math.max(1, Math.ceil(err.retryAfterS))) };
  return new ApiError(s.status, err.message, s.type, err.param === undefined ? null : param(err.param), s.code, headers);
}

/** An unexpected failure: a 500 whose message does not leak a stack. */
export const internalError = (err: unknown) =>
  new ApiError(500, `internal error: ${err instanceof Error ? err.message : String(err)}`, "server_error");
