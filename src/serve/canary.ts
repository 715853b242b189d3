// canary.ts: canary routing of one model name: which version a request goes to, given the name's
// route (a stable version, optionally a canary version and the share of traffic it gets). The choice
// is sticky: a user's key (the request's user, else its tenant) hashes to a fixed point in [0, 1),
// and the user goes to the canary when that point is below the share. It owns the route's checks
// and the hash; which versions exist and their states are model_registry.ts's.

export interface CanaryRoute {
  readonly stable: string;
  readonly canary?: string;
  /** Fraction of users sent to the canary, in [0, 1]; 0 without a canary. */
  readonly canaryShare: number;
}

/** FNV-1a (32 bit) over the UTF-16 code units of s. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The fixed point of `key` for model `name`, in [0, 1). NOTE: the name is hashed in, so the users that
 * try one name's canary are not always the same users that try every other name's; a final avalanche
 * (murmur3's fmix32) spreads keys that differ in one character.
 */
export function stickyPoint(name: string, key: string): number {
  let h = fnv1a(`${name}\u0000${key}`);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/**
 * The version `key` gets under `route`. Raising the share only moves users from stable to canary
 * (never back), so a user sees at most one switch per rollout step.
 */
export function pickVersion(name: string, route: CanaryRoute, key: string): string {
  if (route.canary === undefined || route.canaryShare <= 0) return route.stable;
  return stickyPoint(name, key) < route.canaryShare ? route.canary : route.stable;
}

/** Why `route` is not valid (a message naming the field), or undefined when it is. */
export function routeProblem(route: CanaryRoute): string | undefined {
  const share = route.canaryShare;
  if (!(Number.isFinite(share) && share >= 0 && share <= 1)) return `canaryShare must be a number in [0, 1], got ${share}`;
  if (route.canary === undefined && share > 0) return `canaryShare is ${share} but no canary version is given`;
  if (route.canary !== undefined && route.canary === route.stable) return `the canary version '${route.canary}' is the stable version`;
  return undefined;
}
