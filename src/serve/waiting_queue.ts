// waiting_queue.ts: the order in which waiting requests are admitted: by tier (rank 0 first); within
// a tier, preempted requests first (oldest arrival first), then round robin between tenants, FIFO
// within a tenant. It does not decide whether the head fits (scheduler.ts) and knows nothing of blocks.
//
// NOTE: round robin is by admissions: the tenant admitted longest ago goes next, so a tenant with a
// thousand queued requests gets one turn per round like a tenant with one. A tenant whose queue
// empties forgets its turn; when it comes back it joins the end of the round, as a new tenant does.

import type { Request } from "./request.js";

interface TenantQueue {
  readonly requests: Request[];
  /** The admission counter when this tenant was last admitted (or joined, + 0.5). */
  lastServed: number;
}

class TierQueue {
  /** Preempted requests, oldest arrival first. */
  readonly resumed: Request[] = [];
  readonly tenants = new Map<string, TenantQueue>();
  size = 0;

  /** The tenant whose turn it is: admitted longest ago, ties to the one whose head arrived first. */
  nextTenant(): TenantQueue | undefined {
    let best: TenantQueue | undefined;
    for (const t of this.tenants.values()) {
      if (best === undefined || t.lastServed < best.lastServed || (t.lastServed === best.lastServed && t.requests[0]!.seq < best.requests[0]!.seq)) best = t;
    }
    return best;
  }
}

function byArrival(a: Request, b: Request): number {
  return a.arrivalTime - b.arrivalTime || a.seq - b.seq;
}

export class WaitingQueue {
  private readonly tiers: TierQueue[];
  private admissions = 0;

  constructor(numTiers: number) {
    this.tiers = Array.from({ length: numTiers }, () => new TierQueue());
  }

  get length(): number {
    return this.tiers.reduce((n, t) => n + t.size, 0);
  }

  /** A new request: the back of its tenant's queue. */
  push(req: Request): void {
    const tier = this.tier(req);
    let q = tier.tenants.get(req.tenant);
    if (q === undefined) {
      // NOTE: + 0.5: behind every active tenant, including the one admitted last.
      q = { requests: [], lastServed: this.admissions + 0.5 };
      tier.tenants.set(req.tenant, q);
    }
    q.requests.push(req);
    tier.size++;
  }

  /** A preempted request: ahead of every new request of its tier. */
  pushResumed(req: Request): void {
    const tier = this.tier(req);
    tier.resumed.push(req);
    tier.resumed.sort(byArrival);
    tier.size++;
  }

  /** The next request to admit, left in the queue. */
  peek(): Request | undefined {
    for (const tier of this.tiers) {
      if (tier.size === 0) continue;
      return tier.resumed[0] ?? tier.nextTenant()!.requests[0];
    }
    return undefined;
  }

  /** Remove the request peek() returned: it was admitted, so its tenant's turn is used. */
  popAdmitted(req: Request): void {
    if (this.peek() !== req) throw new Error(`waiting queue: ${req.reqId} admitted out of order`);
    const tier = this.tier(req);
    if (tier.resumed[0] === req) {
      tier.resumed.shift();
      tier.size--;
      return;
    }
    const q = tier.tenants.get(req.tenant)!;
    q.requests.shift();
    tier.size--;
    this.admissions++;
    q.lastServed = this.admissions;
    if (q.requests.length === 0) tier.tenants.delete(req.tenant);
  }

  /** Remove a request from anywhere (abort, timeout); false if it is not here. */
  remove(req: Request): boolean {
    const tier = this.tier(req);
    const r = tier.resumed.indexOf(req);
    if (r >= 0) {
      tier.resumed.splice(r, 1);
      tier.size--;
      return true;
    }
    const q = tier.tenants.get(req.tenant);
    const i = q === undefined ? -1 : q.requests.indexOf(req);
    if (i < 0) return false;
    q!.requests.splice(i, 1);
    tier.size--;
    if (q!.requests.length === 0) tier.tenants.delete(req.tenant);
    return true;
  }

  *[Symbol.iterator](): IterableIterator<Request> {
    for (const tier of this.tiers) {
      yield* tier.resumed;
      for (const q of tier.tenants.values()) yield* q.requests;
    }
  }

  private tier(req: Request): TierQueue {
    const t = this.tiers[req.priority];
    if (t === undefined) throw new Error(`waiting queue: ${req.reqId} has priority ${req.priority}, there are ${this.tiers.length} tiers`);
    return t;
  }
}
