// llama_server.ts: the command lines of the two servers bench/serve_peer.ts starts side by side, as pure
// functions (unit-tested without either binary): llama.cpp's llama-server and `kiln serve`, given the same
// GGUF file, the same threads, the same number of sequences running at once and the same KV capacity
// (slots x tokens per slot), and the load levels (concurrency:requests) the comparison runs.

/** What both servers are given. */
export interface ServePeerSetup {
  readonly model: string;
  readonly threads: number;
  /** Requests decoded at once: llama-server's --parallel slots, kiln's --max-batch. */
  readonly parallel: number;
  /** KV tokens per running request: llama-server splits -c evenly over its slots; kiln gets the same total in blocks. */
  readonly ctxPerSlot: number;
}

/** 32 slots of 256 tokens hold every request of the benchmark (a short prompt + 64 generated tokens). */
export const DEFAULT_SETUP = { parallel: 32, ctxPerSlot: 256 } as const;

function check(s: ServePeerSetup): void {
  for (const [k, v] of [["threads", s.threads], ["parallel", s.parallel], ["ctxPerSlot", s.ctxPerSlot]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`serve peer: ${k} must be an integer >= 1, got ${v}`);
  }
  if (s.model === "") throw new Error("serve peer: model path is empty");
}

/**
 * llama-server on 127.0.0.1:`port`: -t and -tb (prompt batches) both the thread count, --parallel slots
 * with continuous batching, -c = slots x ctxPerSlot (split evenly: a slot holds ctxPerSlot), no web UI.
 * NOTE: --reasoning-format none: otherwise this build parses each completion for a reasoning/content format,
 * and a random-weight model's text (stray bytes) made it answer 500 "does not match the expected Content-only
 * format" (2026-12-07, 3f545becc).
 */
export function llamaServerArgs(s: ServePeerSetup & { readonly port: number }): string[] {
  check(s);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new Error(`serve peer: port must be 1-65535, got ${s.port}`);
  return [
    "-m", s.model, "--host", "127.0.0.1", "--port", String(s.port),
    "-t", String(s.threads), "-tb", String(s.threads),
    "--parallel", String(s.parallel), "--cont-batching", "-c", String(s.parallel * s.ctxPerSlot), "--no-webui",
    "--reasoning-format", "none",
  ];
}

/**
 * `kiln serve`'s arguments after bin/kiln.mjs: a free port (it prints the URL), the cpu backend, the
 * thread count, --max-batch slots, a KV cache of slots x ctxPerSlot tokens in blocks of `blockSize`, and
 * --prefill-first when asked (src/serve/prefill_first.ts).
 */
export function kilnServeArgs(s: ServePeerSetup & { readonly blockSize?: number; readonly prefillFirst?: boolean }): string[] {
  check(s);
  const blockSize = s.blockSize ?? 16;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`serve peer: blockSize must be an integer >= 1, got ${blockSize}`);
  return [
    "serve", "--model", s.model, "--port", "0", "--backend", "cpu", "--threads", String(s.threads),
    "--max-batch", String(s.parallel), "--block-size", String(blockSize), "--kv-blocks", String(Math.ceil((s.parallel * s.ctxPerSlot) / blockSize)),
    ...(s.prefillFirst ? ["--prefill-first"] : []),
  ];
}

export interface ServeLevel {
  readonly concurrency: number;
  readonly requests: number;
}

/** "1:16,8:64,32:128" -> levels; throws naming the item that is not CONCURRENCY:REQUESTS with requests >= concurrency. */
export function parseLevels(text: string): ServeLevel[] {
  const items = text.split(",").map((x) => x.trim()).filter((x) => x !== "");
  if (items.length === 0) throw new Error(`--levels must list CONCURRENCY:REQUESTS pairs, e.g. 1:16,8:64,32:128, got '${text}'`);
  const seen = new Set<number>();
  return items.map((item) => {
    const m = /^(\d+):(\d+)$/.exec(item);
    const concurrency = m ? Number(m[1]) : NaN;
    const requests = m ? Number(m[2]) : NaN;
    if (!m || concurrency < 1 || requests < concurrency) {
      throw new Error(`--levels: '${item}' must be CONCURRENCY:REQUESTS, integers with 1 <= concurrency <= requests`);
    }
    if (seen.has(concurrency)) throw new Error(`--levels: concurrency ${concurrency} is listed twice`);
    seen.add(concurrency);
    return { concurrency, requests };
  });
}
