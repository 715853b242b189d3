// kiln's public API: tensors, their ops and gradients, backends, jit. Layers above (nn, models,
// serve, train) import from here; the CLI and apps import from here and from the layers' own entry
// files (src/<layer>/index.ts, src/web.ts), never from a layer's internals (test/unit/layering.test.ts).

import "./autograd/index.js"; // installs Tensor.backward

export type { Backend, BackendInfo, BackendName } from "./core/backend.js";
export type { DType } from "./core/dtype.js";
export { setDebugLevel } from "./core/debug.js";
export { BACKEND_NAMES, chooseBackend, defaultBackend, getBackend, probeBackends, selectBackend, setDefaultBackend } from "./backends/index.js";
export type { BackendProbe, BackendSelection, PassedOver } from "./backends/index.js";
export { openNccl } from "./backends/index.js";
export { parseThreadCount, setThreadCount } from "./backends/cpu/thread_count.js";
export { cpuPoolStats } from "./backends/cpu/wasm/matmul_threads.js";
export type { CpuPoolStats } from "./backends/cpu/wasm/matmul_threads.js";
export { Tensor } from "./tensor/tensor.js";
export { bufferView } from "./tensor/buffer_view.js";
export { arange, eye, full, ones, tensor, zeros } from "./tensor/create.js";
export type { TensorOptions } from "./tensor/create.js";
export { manualSeed, rand, randn, randomBits } from "./tensor/random.js";
export { autocast, noGrad, enableGrad, withRoutines } from "./tensor/context.js";
export type { MatmulPolicy } from "./tensor/context.js";
export {
  attention, attentionBackward, attentionBackwardComposed, attentionReference, matmul, matmulReference, softmax, softmaxReference,
} from "./tensor/linalg.js";
export { argmax, concat, concatReference, crossEntropy, erf, gelu, layernorm, logSoftmax, oneHot, relu, rmsnorm, scatterAdd, scatterAddReference, sigmoid, silu } from "./tensor/composites.js";
export { FP8_E4M3, FP8_E5M2, roundToFormat } from "./tensor/float_format.js";
export type { FloatFormat } from "./tensor/float_format.js";
export { jit } from "./tensor/jit.js";
export type { JitFunction } from "./tensor/jit.js";
export { kvWrite, kvWriteReference, pagedAttention, pagedAttentionReference } from "./tensor/paged.js";
export type { PagedAttentionInputs } from "./tensor/paged.js";
export { dequantizeRows, gatherQuantizedRows, matmulQuantized, matmulQuantizedReference, quantizedBytes, quantizedTensor } from "./tensor/quant.js";
export type { QuantizedTensor } from "./tensor/quant.js";

import type { Tensor as TensorT } from "./tensor/tensor.js";
import { realize as realizeNodes } from "./core/realize.js";
/** Compute several tensors in one schedule (shared work once, intermediates reused by liveness). */
export async function realizeAll(tensors: readonly TensorT[]): Promise<void> {
  await realizeNodes(tensors.map((t) => t.node));
}
export { backward, checkpoint, customGrad, gradients } from "./autograd/index.js";
export type { ActivationSaver, CheckpointOptions } from "./autograd/index.js";
export { MEMORY_CATEGORIES, MemoryAccountant, memoryAccountant, tagNode, trackMemory } from "./core/memory.js";
export type { MemoryBytes, MemoryCategory, MemorySnapshot } from "./core/memory.js";
