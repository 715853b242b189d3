// encoder.ts is a tiny WebAssembly binary encoder: just the opcodes and sections the cpu routines'
// kernels use (i32 control flow and arithmetic, 128-bit SIMD loads/stores, f32x4 math, the few i32x4
// bit operations an f16 -> f32 conversion needs, one imported memory). It does not know what the kernels compute (see matmul_kernel.ts); it only spells bytes.
// NOTE: emitting the module from TypeScript keeps the repo free of binary blobs and a wasm toolchain.

/** Value types (the byte that names them in the binary format). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

const BLOCK_VOID = 0x40;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (for i32.const). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const str = (s: string): number[] => [...uleb(s.length), ...[...s].map((ch) => ch.charCodeAt(0))];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** Builds one function body: instructions are appended in order, locals are declared on the fly. */
export class FuncBody {
  private readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  /** nparams: how many i32 parameters the function takes (locals 0..nparams-1). */
  constructor(readonly nparams: number) {}

  /** A new local of this type; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.nparams + this.locals.length - 1;
  }

  get(i: number): this { return this.op(0x20, ...uleb(i)); }
  set(i: number): this { return this.op(0x21, ...uleb(i)); }
  tee(i: number): this { return this.op(0x22, ...uleb(i)); }
  i32(v: number): this { return this.op(0x41, ...sleb(v | 0)); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32Ne(): this { return this.op(0x47); }
  i32LtS(): this { return this.op(0x48); }
  i32ShrU(): this { return this.op(0x76); }
  /** `block` (br 0 inside jumps past its end). */
  block(): this { return this.op(0x02, BLOCK_VOID); }
  /** `loop` (br 0 inside jumps back to its start). */
  loop(): this { return this.op(0x03, BLOCK_VOID); }
  /** `if` (without `else`): runs its body when the popped i32 is not zero. */
  if(): this { return this.op(0x04, BLOCK_VOID); }
  ret(): this { return this.op(0x0f); }
  br(depth: number): this { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number): this { return this.op(0x0d, ...uleb(depth)); }
  end(): this { return this.op(0x0b); }
  call(fn: number): this { return this.op(0x10, ...uleb(fn)); }

  // ---- SIMD (prefix 0xfd, then the opcode as unsigned LEB128); memargs are log2(align), offset ----
  v128Load(offset: number): this { return this.simd(0x00, 4, ...uleb(offset)); }
  v128Store(offset: number): this { return this.simd(0x0b, 4, ...uleb(offset)); }
  /** Load one f32 and splat it into all four lanes. */
  v128Load32Splat(offset: number): this { return this.simd(0x09, 2, ...uleb(offset)); }
  /** Load four u16 and zero-extend each into an i32 lane. */
  v128Load16x4U(offset: number): this { return this.simd(0x04, 3, ...uleb(offset)); }
  v128Zero(): this { return this.i32x4Const([0, 0, 0, 0]); }
  /** A v128 constant from four i32 lanes (lane 0 first). */
  i32x4Const(lanes: readonly [number, number, number, number]): this {
    return this.simd(0x0c, ...lanes.flatMap((x) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff]));
  }
  /** i8x16.shuffle of the two popped vectors: byte lane i of the result is byte lanes[i] of (first ++ second). */
  i8x16Shuffle(lanes: readonly number[]): this { return this.simd(0x0d, ...lanes); }
  /** Shuffle by f32 lanes: lane i of the result is f32 lane lanes[i] of (first ++ second), 0..7. */
  f32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    return this.i8x16Shuffle(lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }
  i32x4Splat(): this { return this.simd(0x11); }
  i32x4GtS(): this { return this.simd(0x3b); }
  v128And(): this { return this.simd(0x4e); }
  v128Or(): this { return this.simd(0x50); }
  /** i32x4 shift left by the popped i32. */
  i32x4Shl(): this { return this.simd(0xab); }
  f32x4Add(): this { return this.simd(228); }
  f32x4Mul(): this { return this.simd(230); }
  /** Relaxed SIMD: a * b + c for (a, b, c) popped in that order, fused or not as the engine chooses (FMA on x64 with FMA3). */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }
  // For the attention kernel's softmax and exp (attention_kernel.ts, exp_f32.ts).
  i32GtS(): this { return this.op(0x4a); }
  f32x4Sub(): this { return this.simd(229); }
  f32x4Div(): this { return this.simd(231); }
  /** Pseudo-min/max: pmin(a, b) = b < a ? b : a, pmax(a, b) = a < b ? b : a (one x64 instruction each). */
  f32x4Pmin(): this { return this.simd(234); }
  f32x4Pmax(): this { return this.simd(235); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4Sub(): this { return this.simd(0xb1); }
  /** i32x4 arithmetic shift right by the popped i32. */
  i32x4ShrS(): this { return this.simd(0xac); }
  /** Lanes of the first operand where the mask (popped last) has 1 bits, else of the second. */
  v128Bitselect(): this { return this.simd(0x52); }

  // ---- what generated elementwise kernels need (render_wasm.ts): ops by name, so a renderer's tables read as the spec does ----
  /** A plain (non-SIMD) opcode by its text-format name. */
  scalar(name: ScalarOp): this { return this.op(SCALAR_OPS[name]); }
  /** A SIMD opcode without immediates, by its text-format name. */
  vec(name: VecOp): this { return this.simd(VEC_OPS[name]); }
  f32Const(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...b);
  }
  /** f32.load / i32.load (natural alignment) at the popped address + offset. */
  f32Load(offset: number): this { return this.op(0x2a, 2, ...uleb(offset)); }
  f32Store(offset: number): this { return this.op(0x38, 2, ...uleb(offset)); }
  f32x4ReplaceLane(lane: number): this { return this.simd(0x20, lane); }
  f32x4ExtractLane(lane: number): this { return this.simd(0x1f, lane); }
  i32x4ReplaceLane(lane: number): this { return this.simd(0x1c, lane); }
  /** `else` of an `if`. */
  else(): this { return this.op(0x05); }

  /** The body in the binary format: local declarations (one group per local), code, `end`. */
  encode(): number[] {
    const decls = this.locals.map((t) => [1, t]);
    const body = [...vec(decls), ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }

  private simd(opcode: number, ...imm: number[]): this { return this.op(0xfd, ...uleb(opcode), ...imm); }
  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
}

/** Plain opcodes by text-format name (the WebAssembly spec's numbering). */
const SCALAR_OPS = {
  "select": 0x1b, "i32.eqz": 0x45, "i32.eq": 0x46, "i32.ne": 0x47, "i32.lt_s": 0x48, "i32.lt_u": 0x49, "i32.gt_s": 0x4a,
  "i32.le_s": 0x4c, "i32.ge_s": 0x4e, "i32.add": 0x6a, "i32.sub": 0x6b, "i32.mul": 0x6c, "i32.div_s": 0x6d,
  "i32.rem_s": 0x6f, "i32.and": 0x71, "i32.or": 0x72, "i32.xor": 0x73, "i32.shl": 0x74, "i32.shr_s": 0x75,
  "f32.convert_i32_s": 0xb2,
} as const;
export type ScalarOp = keyof typeof SCALAR_OPS;

/** SIMD opcodes without immediates by text-format name (after the 0xfd prefix). */
const VEC_OPS = {
  "i32x4.splat": 0x11, "f32x4.splat": 0x13, "i32x4.eq": 0x37, "i32x4.ne": 0x38,
  "f32x4.eq": 0x41, "f32x4.ne": 0x42, "f32x4.lt": 0x43, "f32x4.gt": 0x44, "f32x4.le": 0x45, "f32x4.ge": 0x46,
  "v128.not": 0x4d, "v128.and": 0x4e, "v128.andnot": 0x4f, "v128.or": 0x50, "v128.xor": 0x51, "v128.bitselect": 0x52,
  "f32x4.ceil": 0x67, "f32x4.floor": 0x68, "f32x4.trunc": 0x69, "f32x4.nearest": 0x6a,
  "i32x4.shl": 0xab, "i32x4.shr_s": 0xac, "i32x4.add": 0xae, "i32x4.sub": 0xb1, "i32x4.mul": 0xb5,
  "i32x4.min_s": 0xb6, "i32x4.max_s": 0xb8,
  "f32x4.abs": 0xe0, "f32x4.neg": 0xe1, "f32x4.sqrt": 0xe3, "f32x4.add": 0xe4, "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6, "f32x4.div": 0xe7, "f32x4.min": 0xe8, "f32x4.max": 0xe9,
  "i32x4.trunc_sat_f32x4_s": 0xf8, "f32x4.convert_i32x4_s": 0xfa,
} as const;
export type VecOp = keyof typeof VEC_OPS;

export interface FuncDef {
  readonly name: string; // exported under this name
  readonly body: FuncBody;
}

/**
 * A module that imports its memory as `env.memory` (so the host can grow it and view it) and
 * exports every function. Functions take i32 parameters and return nothing; they are indexed in the order given.
 * With sharedMaxPages the memory is a shared one of at most that many 64 KiB pages (threads need both).
 */
export function encodeModule(funcs: readonly FuncDef[], sharedMaxPages?: number): Uint8Array<ArrayBuffer> {
  const types = funcs.map((f) => [0x60, ...uleb(f.body.nparams), ...new Array<number>(f.body.nparams).fill(I32), 0]);
  const limits = sharedMaxPages === undefined ? [0x00, ...uleb(1)] : [0x03, ...uleb(1), ...uleb(sharedMaxPages)];
  const memImport = [...str("env"), ...str("memory"), 0x02, ...limits]; // memory, min 1 page
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([memImport])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(funcs.map((f) => f.body.encode()))),
  ];
  return new Uint8Array(bytes);
}
