// nccl_rendezvous.ts: what the ranks of an NCCL communicator agree on through the TCP store (store.ts,
// hosted by rank 0) before NCCL itself runs: whether NCCL opened on every rank (so a rank without a GPU or
// without libnccl fails the job naming itself, instead of leaving the others blocked in ncclCommInitRank),
// and the 128-byte unique id the leader makes, carried as base64. Pure store traffic, no device: it is the
// part of the nccl communicator that runs (and is tested) on a machine without a GPU.

/** The store calls used here (TCPStore has them). */
export interface RendezvousStore {
  set(key: string, value: string): Promise<void>;
  get(key: string, timeoutMs?: number): Promise<string>;
}

/** nccl.h's NCCL_UNIQUE_ID_BYTES. */
export const NCCL_UNIQUE_ID_BYTES = 128;

/**
 * Every rank says whether NCCL opened on it (`localError` undefined) or why not, then reads every rank's
 * answer, so all ranks fail together with the same message naming each rank that cannot use NCCL (or
 * that never answered within `timeoutMs`). `key`: the store prefix of this communicator.
 */
export async function agreeNcclReady(store: RendezvousStore, rank: number, size: number, localError: string | undefined, key: string, timeoutMs: number): Promise<void> {
  await store.set(`${key}/ready/${rank}`, localError === undefined ? "ok" : `error:${localError}`);
  const answers = await Promise.all(
    [...Array(size).keys()].map((r) =>
      store.get(`${key}/ready/${r}`, timeoutMs).catch((err: Error) =>
        /timed out/.test(err.message)
          ? `error:it never said whether NCCL opened on it (no answer in the TCP store within ${timeoutMs} ms)`
          : `error:its answer could not be read: ${err.message}`,
      ),
    ),
  );
  const failed = answers.map((a, r) => ({ r, a })).filter(({ a }) => a !== "ok");
  if (failed.length === 0) return;
  // NOTE: every rank is about to fail and exit, rank 0 with the store: it first waits until each rank that
  // answered has read all the answers, so none loses the store mid-read and names the wrong cause.
  await store.set(`${key}/read/${rank}`, "1").catch(() => undefined);
  if (rank === 0) {
    const answered = answers.flatMap((a, r) => (r !== 0 && !a.includes("never said whether NCCL opened") ? [r] : []));
    await Promise.all(answered.map((r) => store.get(`${key}/read/${r}`, timeoutMs).catch(() => undefined)));
  }
  // NOTE: ranks with the same reason (every rank of a machine without a GPU) are named once together.
  const byReason = new Map<string, number[]>();
  for (const { r, a } of failed) {
    const why = a.startsWith("error:") ? a.slice("error:".length) : `unexpected answer ${JSON.stringify(a)}`;
    byReason.set(why, [...(byReason.get(why) ?? []), r]);
  }
  const each = [...byReason].map(([why, rs]) => `${rs.length === 1 ? "rank" : "ranks"} ${rs.join(", ")}: ${why}`);
  throw new Error(`nccl communicator (rank ${rank} of ${size}): ${failed.length} of ${size} ranks cannot use NCCL; ${each.join("; ")}`);
}

/**
 * The unique id of one NCCL communicator on every member. The leader (member 0) calls `makeId` (the addon's
 * ncclGetUniqueId) and puts it under `key`; every other member reads it and then acknowledges, and the leader
 * returns only once all have. NOTE: ncclCommInitRank blocks its thread until every member joins, and rank 0's
 * thread also serves the store: the leader must not block before every member has its id.
 */
export async function exchangeUniqueId(store: RendezvousStore, member: number, size: number, makeId: () => Uint8Array, key: string, timeoutMs: number): Promise<Uint8Array> {
  if (member === 0) {
    const id = makeId();
    checkId(id, "ncclGetUniqueId", member);
    await store.set(`${key}/uid`, Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("base64"));
    await Promise.all(
      [...Array(size).keys()].slice(1).map((m) =>
        store.get(`${key}/uid-ack/${m}`, timeoutMs).catch(() => {
          throw new Error(`nccl rendezvous (${key}): member ${m} did not fetch the unique id within ${timeoutMs} ms (is it running? did it fail before?)`);
        }),
      ),
    );
    return id;
  }
  const text = await store.get(`${key}/uid`, timeoutMs).catch((err: Error) => {
    throw new Error(`nccl rendezvous (${key}): member ${member} got no unique id from member 0 within ${timeoutMs} ms: ${err.message}`);
  });
  const id = decodeId(text, `${key}/uid`, member);
  await store.set(`${key}/uid-ack/${member}`, "1");
  return id;
}

/** A store value as a unique id: strict base64 of exactly 128 bytes, or an error naming the key and what it held. */
export function decodeId(text: string, key: string, member: number): Uint8Array {
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) {
    throw new Error(`nccl rendezvous: member ${member}: store key "${key}" does not hold base64 (got ${JSON.stringify(text.slice(0, 40))}${text.length > 40 ? "..." : ""})`);
  }
  const id = new Uint8Array(bytes);
  checkId(id, `store key "${key}"`, member);
  return id;
}

function checkId(id: Uint8Array, from: string, member: number): void {
  if (!(id instanceof Uint8Array) || id.length !== NCCL_UNIQUE_ID_BYTES) {
    throw new Error(`nccl rendezvous: member ${member}: the unique id from ${from} must be ${NCCL_UNIQUE_ID_BYTES} bytes, got ${id instanceof Uint8Array ? id.length : typeof id}`);
  }
}
