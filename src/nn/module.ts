// module.ts: the Module base class: named parameters, submodules, and state dicts (name -> Tensor).
// Parameter names are dotted paths through the submodules ("blk.0.attn_q.weight"), so a model whose
// modules are named like a file's tensors loads that file with one loadStateDict call.
// It owns naming and loading only; forward passes are each module's own (linear.ts, norm.ts, ...).

import type { Backend, DType, QuantizedTensor, Tensor } from "../index.js";
import { zeros } from "../index.js";

const fmt = (shape: readonly number[]) => `(${shape.join(", ")})`;

export abstract class Module {
  private readonly params = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Register (or replace) a parameter of this module; names have no dots. */
  protected setParameter(name: string, t: Tensor): Tensor {
    if (name.includes(".")) throw new Error(`Module: parameter name '${name}' must not contain '.'`);
    this.params.set(name, t);
    return t;
  }

  protected parameter(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`Module ${this.constructor.name}: no parameter '${name}'`);
    return t;
  }

  protected optionalParameter(name: string): Tensor | undefined {
    return this.params.get(name);
  }

  protected addModule<M extends Module>(name: string, m: M): M {
    if (name.includes(".")) throw new Error(`Module: submodule name '${name}' must not contain '.'`);
    this.children.set(name, m);
    return m;
  }

  /** The submodule at a dotted path ("blk.0.attn_q"), or undefined. */
  submodule(path: string): Module | undefined {
    let m: Module | undefined = this;
    for (const part of path.split(".")) m = m?.children.get(part);
    return m;
  }

  /** Every parameter by its dotted name: this module's own first, then each submodule's, in registration order. */
  parameters(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.collect("", out);
    return out;
  }

  private collect(prefix: string, out: Map<string, Tensor>): void {
    for (const [name, t] of this.params) out.set(prefix + name, t);
    for (const [name, m] of this.children) m.collect(`${prefix}${name}.`, out);
  }

  /** The parameters as a name -> Tensor map (the same tensors; they are not copied). */
  stateDict(): Map<string, Tensor> {
    return this.parameters();
  }

  /**
   * Replace every parameter by the tensor of the same name. Names must match exactly (a missing or an
   * unexpected key is an error naming it), and each tensor must have the parameter's shape, dtype and backend.
   */
  loadStateDict(state: ReadonlyMap<string, Tensor>): void {
    const own = this.parameters();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (missing.length || unexpected.length) {
      const parts = [missing.length ? `missing ${missing.map((k) => `'${k}'`).join(", ")}` : "", unexpected.length ? `unexpected ${unexpected.map((k) => `'${k}'`).join(", ")}` : ""];
      throw new Error(`loadStateDict (${this.constructor.name}): ${parts.filter(Boolean).join("; ")}`);
    }
    for (const [name, cur] of own) {
      const t = state.get(name)!;
      if (t.shape.length !== cur.shape.length || t.shape.some((d, i) => d !== cur.shape[i])) {
        throw new Error(`loadStateDict: '${name}' has shape ${fmt(t.shape)}, expected ${fmt(cur.shape)}`);
      }
      if (t.dtype !== cur.dtype) throw new Error(`loadStateDict: '${name}' is ${t.dtype}, expected ${cur.dtype}`);
      if (t.backend !== cur.backend) throw new Error(`loadStateDict: '${name}' is on ${t.backend.name}, expected ${cur.backend.name}`);
    }
    for (const name of own.keys()) this.assign(name.split("."), state.get(name)!);
  }

  private assign(path: readonly string[], t: Tensor): void {
    const [head, ...rest] = path;
    if (rest.length === 0) this.setParameter(head!, t);
    else this.children.get(head!)!.assign(rest, t);
  }
}

/** Submodules named "0", "1", ... (GGUF's "blk.N"). */
export class ModuleList<M extends Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];
  constructor(items: readonly M[]) {
    super();
    items.forEach((m, i) => this.items.push(this.addModule(String(i), m)));
  }
  get length(): number { return this.items.length; }
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new Error(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> { return this.items[Symbol.iterator](); }
}

/** Where a module's parameters live, and their dtype (f32 on the default backend unless given). */
export interface ParamOptions {
  readonly backend?: Backend;
  readonly dtype?: DType;
}

/**
 * A parameter before any state dict is loaded: zeros as a lazy constant, which costs no memory.
 * NOTE: no random initialisation here; training code initialises what it trains.
 */
export const placeholder = (shape: readonly number[], opts: ParamOptions): Tensor =>
  zeros(shape, { dtype: opts.dtype ?? "f32", ...(opts.backend ? { backend: opts.backend } : {}) });

/** A module whose weight can stay quantized (Linear, Embedding): weights.ts loads such weights with loadQuantized. */
export interface QuantizableModule {
  loadQuantized(q: QuantizedTensor): void;
}

export const isQuantizable = (m: Module | undefined): m is Module & QuantizableModule =>
  m !== undefined && typeof (m as Partial<QuantizableModule>).loadQuantized === "function";

/** A quantized weight's logical shape must be the module's (an error naming the module and both shapes). */
export function checkQuantizedShape(what: string, q: QuantizedTensor, want: readonly [number, number]): void {
  if (q.shape[0] !== want[0] || q.shape[1] !== want[1]) {
    throw new Error(`${what}.loadQuantized: a ${q.format} weight of shape ${fmt(q.shape)}, the module's is ${fmt(want)}`);
  }
}
