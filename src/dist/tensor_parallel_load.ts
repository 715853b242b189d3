// tensor_parallel_load.ts: a tensor-parallel model from a model file (a LoadedModel of src/models): the
// whole model is built on the backend as the single process would (Llama in the training layout: norms not
// folded, q/k/v fused), this rank's slices are cut from it (tensor_parallel_shard.ts), and the whole is
// freed. What `kiln serve --tp N` runs on each rank.
// NOTE: each rank holds the whole model for a moment; reading only the rank's bytes from the file is the
// elastic checkpoint's business (issue 11, item 9), not done here.

import type { Backend } from "../index.js";
import { Gpt2 } from "../models/gpt2.js";
import { Llama } from "../models/llama.js";
import type { LoadedModel } from "../models/types.js";
import type { Communicator } from "./comm.js";
import { TpGpt2 } from "./tensor_parallel_gpt2.js";
import { TpLlama } from "./tensor_parallel_llama.js";
import type { TpLanguageModel } from "./tensor_parallel_model.js";
import { loadShards } from "./tensor_parallel_shard.js";

/** This rank's tensor-parallel model of `loaded` over `tp` (f32). Every rank of tp calls it. */
export async function tensorParallelFromLoaded(loaded: LoadedModel, backend: Backend, tp: Communicator): Promise<TpLanguageModel> {
  const config = loaded.config;
  let whole: Llama | Gpt2;
  let model: TpLanguageModel;
  switch (config.arch) {
    case "llama":
      whole = Llama.fromLoaded(loaded, backend, { foldNorms: false });
      model = new TpLlama(config, backend, { tp });
      break;
    case "gpt2":
      whole = Gpt2.fromLoaded(loaded, backend);
      model = new TpGpt2(config, backend, { tp, separateHead: whole.output !== undefined });
      break;
    default: {
      const never: never = config;
      throw new Error(`tensor parallel: unknown architecture ${String((never as { arch: string }).arch)}`);
    }
  }
  try {
    await loadShards(model, whole.parameters());
  } catch (err) {
    throw new Error(`${loaded.source}: ${(err as Error).message}`, { cause: err });
  } finally {
    for (const t of whole.parameters().values()) t.dispose();
  }
  return model;
}
