// ops.ts is THE op table: every primitive that can appear in a graph or a kernel expression.
// Gradient rules (autograd/rules.ts) and the renderers' spellings (backends/cpu/render_js.ts, the
// reference; backends/webgpu/wgsl_ops.ts) are tables keyed by these names, typed so that a missing
// entry is a compile error. Composite ops (softmax, gelu, concat, rand, ...) are built from these in
// src/tensor and never appear here.

export const UNARY_OPS = ["neg", "recip", "sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "floor", "not"] as const;
export const BINARY_OPS = [
  "add", "sub", "mul", "div", "max", "min", "pow", "mod",
  "cmplt", "cmpeq", "cmpne",
  // Bitwise on ints (logical on bool); the counter-based RNG is written with these.
  "and", "or", "xor", "shl", "shr",
] as const;
export const TERNARY_OPS = ["where"] as const;
export const REDUCE_OPS = ["sum", "max"] as const;
export const MOVEMENT_OPS = ["reshape", "permute", "expand", "pad", "shrink"] as const;
/** Ops that make values out of nothing or out of realized memory. */
export const SOURCE_OPS = ["buffer", "const", "iota"] as const;
/** Ops whose output element reads an input at a data-dependent position. */
export const INDEX_OPS = ["gather"] as const;
/** Named hand-written kernels; their semantics are their references from primitives (tensor/linalg.ts, paged.ts). */
export const ROUTINES = [
  "matmul", "softmax", "attention", "attention_backward", "kv_write", "paged_attention", "scatter_add", "concat",
  "matmul_q",
] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = (typeof BINARY_OPS)[number];
export type TernaryOp = (typeof TERNARY_OPS)[number];
export type ReduceOp = (typeof REDUCE_OPS)[number];
export type MovementOp = (typeof MOVEMENT_OPS)[number];
export type SourceOp = (typeof SOURCE_OPS)[number];
export type IndexOp = (typeof INDEX_OPS)[number];
export type RoutineName = (typeof ROUTINES)[number];

/** Elementwise math, shared by graph nodes and kernel expressions. */
export type AluOp = UnaryOp | BinaryOp | TernaryOp;

/**
 * Every graph op. "cast" converts values; "reduce" carries its ReduceOp in its arg; "routine" its name;
 * "collective" (all-reduce, all-gather, ...: core/collectives.ts) its spec, run by a process group, not a kernel.
 */
export type Op = AluOp | "cast" | "reduce" | MovementOp | SourceOp | IndexOp | "routine" | "collective";

export type OpKind = "unary" | "binary" | "ternary" | "cast" | "reduce" | "movement" | "source" | "index" | "routine" | "collective";

const KIND = new Map<Op, OpKind>();
for (const o of UNARY_OPS) KIND.set(o, "unary");
for (const o of BINARY_OPS) KIND.set(o, "binary");
for (const o of TERNARY_OPS) KIND.set(o, "ternary");
for (const o of MOVEMENT_OPS) KIND.set(o, "movement");
for (const o of SOURCE_OPS) KIND.set(o, "source");
for (const o of INDEX_OPS) KIND.set(o, "index");
KIND.set("cast", "cast");
KIND.set("reduce", "reduce");
KIND.set("routine", "routine");
KIND.set("collective", "collective");

export function opKind(op: Op): OpKind {
  const k = KIND.get(op);
  if (!k) throw new Error(`unknown op '${op}'`);
  return k;
}

/** View ops: they move no data of their own (a kernel reads through them). */
export const isMovement = (op: Op): op is MovementOp => KIND.get(op) === "movement";

export const isAlu = (op: Op): op is AluOp => {
  const k = KIND.get(op);
  return k === "unary" || k === "binary" || k === "ternary";
};

/** Comparisons produce bool whatever their operands are. */
export const COMPARISONS: ReadonlySet<AluOp> = new Set<AluOp>(["cmplt", "cmpeq", "cmpne"]);
/** Ops defined on integers and bool only. */
export const INT_ONLY: ReadonlySet<AluOp> = new Set<AluOp>(["and", "or", "xor", "shl", "shr", "not"]);
/** Ops defined on floats only (transcendentals). */
export const FLOAT_ONLY: ReadonlySet<AluOp> = new Set<AluOp>(["recip", "sqrt", "exp", "log", "sin", "cos", "tanh", "pow"]);

export function assertNever(x: never, what: string): never {
  throw new Error(`unhandled ${what}: ${String(x)}`);
}
