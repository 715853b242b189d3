// matmul_q_rows.ts: the quantized GEMV's row loop (m = 1, a decode step: out[r] = dot(x, dequant(w row r))
// with w's Q8_0 / Q4_0 blocks read in place), written once as source text so the cpu worker threads
// (wasm/matmul_threads.ts) run the very code the calling thread runs: one thread or many, each out[r] is
// the same sum in the same order, so results are bit-identical whatever the thread count. A task is cut
// into units of rowsPerUnit rows of w; x and out live in a small shared scratch the pool owns.
// It owns this loop and the task's fields; matmul_q.ts owns the routine (validation, the GEMM path).

/**
 * One quantized GEMV: w's row r at byte wByte + r*rowBytes of the buffer registered as `buf` (q4 = 0: Q8_0,
 * 1: Q4_0; 2: Q4_K, whose loop is matmul_q4k_rows.ts); x (k floats) at float xOff and out (n floats) at float outOff of the buffer registered as `sbuf`.
 */
export interface QDotsTask {
  readonly buf: number;
  readonly wByte: number;
  readonly q4: number;
  readonly rowBytes: number;
  readonly k: number;
  readonly n: number;
  readonly rowsPerUnit: number;
  readonly sbuf: number;
  readonly xOff: number;
  readonly outOff: number;
}

export const QDOTS_FIELDS = ["buf", "wByte", "q4", "rowBytes", "k", "n", "rowsPerUnit", "sbuf", "xOff", "outOff"] as const;

/** Views of a buffer the row loop reads: w as bytes (u8, and i8 for Q8_0's signed values); x and out as f32. */
export interface QViews {
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly f32: Float32Array;
}

/**
 * The units a task splits into. NOTE: 64 rows of 768-2048 elements is 50-140 KiB of Q8_0: large enough that
 * a unit's claim is noise, small enough that a late thread's units are taken by the other.
 */
export const qdotsUnits = (p: QDotsTask): number => Math.ceil(p.n / p.rowsPerUnit);

/**
 * runQDots(f16, w, s, u, p): rows [u*rowsPerUnit, ...) of the task. f16: the 65536 f16 values as f32.
 * y = sum over blocks of d * sum(q * x), the block's integer dot first, then scaled once.
 */
export const QDOTS_SOURCE = `function runQDots(f16, w, s, u, p) {
  const r0 = u * p.rowsPerUnit, r1 = Math.min(p.n, r0 + p.rowsPerUnit);
  const wb = w.u8, wi = w.i8, x = s.f32, nb = p.k / 32, xOff = p.xOff;
  for (let r = r0; r < r1; r++) {
    const rowOff = p.wByte + r * p.rowBytes;
    let acc = 0;
    if (p.q4 === 0) {
      for (let b = 0, o = rowOff, xo = xOff; b < nb; b++, o += 34, xo += 32) {
        let sum = 0;
        for (let j = 0; j < 32; j += 4) {
          sum += wi[o + 2 + j] * x[xo + j] + wi[o + 3 + j] * x[xo + j + 1] + wi[o + 4 + j] * x[xo + j + 2] + wi[o + 5 + j] * x[xo + j + 3];
        }
        acc += f16[wb[o] | (wb[o + 1] << 8)] * sum;
      }
    } else {
      for (let b = 0, o = rowOff, xo = xOff; b < nb; b++, o += 18, xo += 32) {
        let sum = 0;
        for (let j = 0; j < 16; j++) {
          const byte = wb[o + 2 + j];
          sum += ((byte & 15) - 8) * x[xo + j] + ((byte >> 4) - 8) * x[xo + j + 16];
        }
        acc += f16[wb[o] | (wb[o + 1] << 8)] * sum;
      }
    }
    x[p.outOff + r] = acc;
  }
}`;

export const runQDots = new Function(`return ${QDOTS_SOURCE}`)() as (f16: Float32Array, w: QViews, s: QViews, u: number, p: QDotsTask) => void;

/** The f16 table as source, for the workers: each value exact in f32, so equal to convert.ts's f16Values(). */
export const F16_TABLE_SOURCE = `(() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    t[h] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})()`;

const viewsOf = (buf: ArrayBufferLike): QViews => ({ u8: new Uint8Array(buf), i8: new Int8Array(buf), f32: new Float32Array(buf, 0, buf.byteLength >> 2) });
let scratch: { views: QViews; shared: boolean } | undefined;
/**
 * A GEMV's operands (x, anything derived from it, out) side by side, in memory the workers can read when `shared`;
 * one scratch for every quantized format's GEMV (matmul_q.ts, matmul_q4k.ts), grown as needed.
 */
export function qScratch(floats: number, shared: boolean): QViews {
  if (!scratch || scratch.shared !== shared || scratch.views.f32.length < floats) {
    const bytes = Math.max(4 * floats, 1 << 16);
    scratch = { views: viewsOf(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)), shared };
  }
  return scratch.views;
}
const wViews = new WeakMap<ArrayBufferLike, QViews>();
/** Views over a weight's buffer, made once per buffer. */
export function weightViews(buf: ArrayBufferLike): QViews {
  let v = wViews.get(buf);
  if (!v) wViews.set(buf, (v = viewsOf(buf)));
  return v;
}
