// agree_config.ts: the check every parallel mode makes before its first step: every rank of a group has
// the same model layout and training configuration, else the ranks would exchange unrelated numbers or
// hang in collectives of different lengths. Each rank's sha-256 of its description goes round in one
// fixed-length allGather (so mismatched ranks still meet), and every rank that differs from the group's
// rank 0 is named, on every rank.

import { createHash } from "node:crypto";
import type { Communicator } from "./comm.js";

/** 16 values of 16 bits each: a sha-256 digest that survives a Float32Array exactly (integers < 2^24). */
const DIGEST_WORDS = 16;

/**
 * Throws on every rank when some rank's `text` (a JSON description) differs from rank 0's, naming each
 * such rank: `${who} on rank R: rank(s) 1 have another model layout or configuration than rank 0 (...)`.
 */
export async function agreeOnConfig(comm: Pick<Communicator, "rank" | "size" | "allGather">, who: string, text: string): Promise<void> {
  const digest = createHash("sha256").update(text).digest();
  const mine = new Float32Array(DIGEST_WORDS);
  for (let i = 0; i < DIGEST_WORDS; i++) mine[i] = digest.readUInt16BE(2 * i);
  const all = await comm.allGather(mine);
  const hex = (r: number) => Array.from(all.subarray(r * DIGEST_WORDS, (r + 1) * DIGEST_WORDS), (w) => w.toString(16).padStart(4, "0")).join("").slice(0, 12);
  const differ = [...Array(comm.size).keys()].filter((r) => hex(r) !== hex(0));
  if (differ.length) {
    throw new Error(
      `${who} on rank ${comm.rank}: rank(s) ${differ.join(", ")} have another model layout or configuration than rank 0 ` +
        `(hash ${differ.map((r) => `${hex(r)} on rank ${r}`).join(", ")} vs ${hex(0)} on rank 0); this rank's: ${text.length > 300 ? `${text.slice(0, 300)}...` : text}`,
    );
  }
}
