// frames.ts: the wire format shared by the TCP store and the local communicator's peer connections. A
// frame is [u32 header bytes][u32 payload bytes][header: JSON][payload: raw bytes], little-endian. The
// JSON header carries the small fields (keys, tags, request ids); the payload carries array data unparsed.
// It owns no sockets: callers feed received chunks in and write encoded frames out.

export interface Frame {
  readonly header: Record<string, unknown>;
  readonly payload: Buffer;
}

/** One frame's bytes (a copy: the caller may change `payload` afterwards). */
export function encodeFrame(header: Record<string, unknown>, payload?: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const lengths = Buffer.alloc(8);
  lengths.writeUInt32LE(json.length, 0);
  lengths.writeUInt32LE(payload?.byteLength ?? 0, 4);
  return Buffer.concat(payload ? [lengths, json, payload] : [lengths, json]);
}

/** Cuts a byte stream into frames. NOTE: chunks are joined only once a whole frame has arrived, so a large
 *  payload arriving in many 64 KiB reads is copied once, not once per read. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  /** The byte length of the frame being received, once its 8 length bytes are in. */
  private need: number | undefined;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.total += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.total < 8) return out;
        if (this.chunks[0]!.length < 8) this.chunks = [Buffer.concat(this.chunks)];
        const first = this.chunks[0]!;
        this.need = 8 + first.readUInt32LE(0) + first.readUInt32LE(4);
      }
      if (this.total < this.need) return out;
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const headerEnd = 8 + buf.readUInt32LE(0);
      const header = JSON.parse(buf.subarray(8, headerEnd).toString("utf8")) as Record<string, unknown>;
      out.push({ header, payload: buf.subarray(headerEnd, this.need) });
      const rest = buf.subarray(this.need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.total = rest.length;
      this.need = undefined;
    }
  }
}
