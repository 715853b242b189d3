// sse_reader.ts: reading server-sent events from a fetch response body, as OpenAI-compatible servers
// stream completions: the `data:` payload of each event, in order. It follows the WHATWG parsing rules
// that matter here (lines end in \r\n, \n or \r; several data lines join with \n; comments and other
// fields are skipped; an event ends at a blank line; a partial event at the end of the stream is
// dropped) and bounds how much it buffers. The one SSE parser of kiln: `kiln bench serve`
// (bench_serve/request.ts) and the browser's HttpEngineClient both read with it, so it uses no Node
// module. What the payloads mean is theirs to say; the writing side is openai/http_io.ts's SseWriter.

/** The most characters one event (its data plus the line being read) may hold. */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024;

export class SseError extends Error {}

/**
 * The data of each event of `body`, as it arrives. Leaving the loop early cancels the body.
 * Throws SseError when an event grows past `maxEventChars`.
 */
export async function* sseData(body: ReadableStream<Uint8Array>, maxEventChars = MAX_EVENT_CHARS): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let data: string[] = [];
  let size = 0;
  let ended = false;
  try {
    while (!ended) {
      const chunk = await reader.read();
      if (chunk.done) {
        ended = true;
        buf += decoder.decode();
      } else {
        buf += decoder.decode(chunk.value, { stream: true });
      }
      let from = 0;
      for (;;) {
        const nl = lineEnd(buf, from, ended);
        if (nl === undefined) break;
        const line = buf.slice(from, nl.at);
        from = nl.at + nl.length;
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
          size = 0;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        if (field !== "data") continue;
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        data.push(value);
        size += value.length + 1;
      }
      buf = buf.slice(from);
      if (size + buf.length > maxEventChars) {
        throw new SseError(`a server-sent event is over ${maxEventChars} characters: not an SSE stream, or a broken one`);
      }
    }
  } finally {
    // NOTE: cancel (not just release) when the caller stops early, so the connection does not keep
    // delivering a body nobody reads; on a finished stream this does nothing.
    await reader.cancel().catch(() => {});
  }
}

/** Where the line starting at `from` ends; undefined when more text is needed to tell. */
function lineEnd(buf: string, from: number, ended: boolean): { at: number; length: number } | undefined {
  for (let i = from; i < buf.length; i++) {
    const c = buf.charCodeAt(i);
    if (c === 10) return { at: i, length: 1 };
    if (c === 13) {
      // NOTE: a \r at the end of what has arrived may be the first half of \r\n: wait for the next byte.
      if (i + 1 === buf.length) return ended ? { at: i, length: 1 } : undefined;
      return { at: i, length: buf.charCodeAt(i + 1) === 10 ? 2 : 1 };
    }
  }
  return undefined;
}
