// The autograd entry: loading it installs Tensor.backward.
export { backward, gradients } from "./gradients.js";
export { GRAD, ROUTINE_GRAD, sumTo } from "./rules.js";
export { customGrad } from "./custom_grad.js";
export { checkpoint } from "./checkpoint.js";
export type { ActivationSaver, CheckpointOptions } from "./checkpoint.js";
