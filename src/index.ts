// kiln's public API: tensors, their ops and gradients, backends, jit. Layers above (nn, models,
// serve, train) and the CLI import from here, never from a layer's internals.

import "./autograd/index.js"; // installs Tensor.backward

export type { Backend, BackendInfo, BackendName } from "./core/backend.js";
export type { DType } from "./core/dtype.js";
export { setDebugLevel } from "./core/debug.js";
export { BACKEND_NAMES, defaultBackend, getBackend, probeBackends, selectBackend, setDefaultBackend } from "./backends/index.js";
export type { BackendProbe } from "./backends/index.js";
export { Tensor } from "./tensor/tensor.js";
export { arange, eye, full, ones, tensor, zeros } from "./tensor/create.js";
export type { TensorOptions } from "./tensor/create.js";
export { manualSeed, rand, randn, randomBits } from "./tensor/random.js";
export { noGrad, enableGrad, withRoutines } from "./tensor/context.js";
export { attention, attentionReference, matmul, matmulReference, softmax, softmaxReference } from "./tensor/linalg.js";
export { argmax, concat, crossEntropy, erf, gelu, layernorm, logSoftmax, oneHot, relu, rmsnorm, scatterAdd, sigmoid, silu } from "./tensor/composites.js";
export { jit } from "./tensor/jit.js";
export { backward, gradients } from "./autograd/index.js";
