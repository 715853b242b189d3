// create_nccl.ts: one rank joining an nccl communicator: open NCCL on this rank's GPU (through `open`, the
// package entry's openNccl: src/dist never imports the cuda backend itself), agree through the store that
// every rank could (nccl_rendezvous.ts), then make the world's NCCL communicator. A rank that cannot open
// NCCL makes every rank fail with the same sentence naming it and why, within the store timeout.

import type { NcclDevice } from "./nccl_device.js";
import { NcclCommunicator, NcclProcess } from "./nccl_comm.js";
import { agreeNcclReady, type RendezvousStore } from "./nccl_rendezvous.js";

export type OpenNccl = () => Promise<{ readonly rt: NcclDevice }>;

export async function createNcclCommunicator(store: RendezvousStore & { close(): Promise<void> }, rank: number, size: number, timeoutMs: number, open: OpenNccl): Promise<NcclCommunicator> {
  let device: NcclDevice | undefined;
  let localError: string | undefined;
  try {
    device = (await open()).rt;
  } catch (err) {
    localError = (err as Error).message;
  }
  await agreeNcclReady(store, rank, size, localError, "nccl/world", timeoutMs);
  const proc = new NcclProcess(device!, store, rank, timeoutMs);
  const comm = new NcclCommunicator(proc, [...Array(size).keys()], "nccl/world");
  try {
    await comm.init();
  } catch (err) {
    proc.abort((err as Error).message);
    throw err;
  }
  return comm;
}
