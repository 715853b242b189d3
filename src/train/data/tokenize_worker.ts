// tokenize_worker.ts: the body of one tokenizing worker thread. It builds the encoder from the
// TokenizerRef in workerData, then answers each {id, text} message with {id, ids} (the ids' buffer is
// transferred, not copied) or {id, error}. It does not choose tasks or write shards (tokenize_pool.ts).

import { parentPort, workerData } from "node:worker_threads";
import { makeEncoder, type TokenizerRef } from "./token_codec.js";

const port = parentPort;
if (port === null) throw new Error("tokenize_worker.ts runs as a worker thread only");
const encode = makeEncoder(workerData as TokenizerRef);
port.on("message", (msg: { id: number; text: string }) => {
  try {
    const ids = encode(msg.text);
    port.postMessage({ id: msg.id, ids }, [ids.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id: msg.id, error: (err as Error).message });
  }
});
