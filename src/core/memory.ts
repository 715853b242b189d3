// memory.ts: device-memory accounting by category. A MemoryAccountant wraps a backend's alloc/free
// (trackMemory: a Proxy, so it works on every backend and forwards everything else untouched) and
// counts live and peak bytes per category. realize.ts tells it what each buffer holds while it runs a
// schedule (assign): a node's category if one was tagged (tagNode), "activations" otherwise; a buffer
// parked in realize's reuse pool counts as "workspace" (allocated, holding nothing live).
// It does not decide anything: the training layer tags parameters, gradients and optimizer state.
// NOTE: a buffer freed by the garbage collector (graph.ts's reaper) leaves the counts late; code that
// wants exact live numbers disposes what it replaces.

import type { Backend, DeviceBuffer } from "./backend.js";
import type { Node } from "./graph.js";

export const MEMORY_CATEGORIES = ["parameters", "gradients", "optimizer", "activations", "workspace"] as const;
export type MemoryCategory = (typeof MEMORY_CATEGORIES)[number];
export type MemoryBytes = Record<MemoryCategory, number>;

export interface MemorySnapshot {
  readonly live: MemoryBytes;
  readonly peak: MemoryBytes;
  readonly liveTotal: number;
  /** Peak of the total (not the sum of the per-category peaks, which need not coincide). */
  readonly peakTotal: number;
}

const zero = (): MemoryBytes => ({ parameters: 0, gradients: 0, optimizer: 0, activations: 0, workspace: 0 });

export class MemoryAccountant {
  private readonly live = zero();
  private peak = zero();
  private liveTotal = 0;
  private peakTotal = 0;
  private readonly held = new Map<DeviceBuffer, MemoryCategory>();
  /** What an allocation made outside realize counts as (uploads, factories). */
  private scope: MemoryCategory = "workspace";

  onAlloc(buf: DeviceBuffer): void {
    this.held.set(buf, this.scope);
    this.live[this.scope] += buf.nbytes;
    this.liveTotal += buf.nbytes;
    this.bump(this.scope);
    if (this.liveTotal > this.peakTotal) this.peakTotal = this.liveTotal;
  }

  onFree(buf: DeviceBuffer): void {
    const cat = this.held.get(buf);
    if (cat === undefined) return; // allocated before accounting began
    this.held.delete(buf);
    this.live[cat] -= buf.nbytes;
    this.liveTotal -= buf.nbytes;
  }

  /** The buffer now holds a value of `cat` (a no-op for buffers this accountant never saw). */
  assign(buf: DeviceBuffer, cat: MemoryCategory): void {
    const was = this.held.get(buf);
    if (was === undefined || was === cat) return;
    this.held.set(buf, cat);
    this.live[was] -= buf.nbytes;
    this.live[cat] += buf.nbytes;
    this.bump(cat);
  }

  /** Run fn with allocations made outside a schedule counted as `cat` (a parameter upload, say). */
  within<T>(cat: MemoryCategory, fn: () => T): T {
    const before = this.scope;
    this.scope = cat;
    try {
      return fn();
    } finally {
      this.scope = before;
    }
  }

  snapshot(): MemorySnapshot {
    return { live: { ...this.live }, peak: { ...this.peak }, liveTotal: this.liveTotal, peakTotal: this.peakTotal };
  }

  /** Start a new measuring window: peaks restart from the live values. */
  resetPeak(): void {
    this.peak = { ...this.live };
    this.peakTotal = this.liveTotal;
  }

  private bump(cat: MemoryCategory): void {
    if (this.live[cat] > this.peak[cat]) this.peak[cat] = this.live[cat];
  }
}

const ACCOUNTANT = Symbol("kiln.memoryAccountant");
type Accounted = Backend & { [ACCOUNTANT]?: MemoryAccountant };

/**
 * The backend with its allocations accounted: the same device, one more layer over alloc and free.
 * Build the model and the trainer on the returned backend (values of two backend objects do not mix).
 */
export function trackMemory<B extends Backend>(backend: B): B {
  if ((backend as Accounted)[ACCOUNTANT]) return backend;
  const acct = new MemoryAccountant();
  return new Proxy(backend, {
    get(target, prop) {
      if (prop === ACCOUNTANT) return acct;
      if (prop === "alloc") {
        return (nbytes: number) => {
          const buf = target.alloc(nbytes);
          acct.onAlloc(buf);
          return buf;
        };
      }
      if (prop === "free") {
        return (buf: DeviceBuffer) => {
          acct.onFree(buf);
          target.free(buf);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      // NOTE: methods run against the real backend object (its private fields are not the proxy's).
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The accountant of a backend made by trackMemory (undefined for any other). */
export function memoryAccountant(backend: Backend): MemoryAccountant | undefined {
  return (backend as Accounted)[ACCOUNTANT];
}

const nodeCategory = new WeakMap<Node, MemoryCategory>();

/** Count the buffer this node gets when realized as `cat` (the trainer tags parameters, gradients, optimizer state). */
export function tagNode(node: Node, cat: MemoryCategory): void {
  nodeCategory.set(node, cat);
}

export function categoryOf(node: Node): MemoryCategory {
  return nodeCategory.get(node) ?? "activations";
}
