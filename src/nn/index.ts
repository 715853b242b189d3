// The nn layer's entry: modules with named parameters and state dicts, built on kiln's public API.

export { isQuantizable, Module, ModuleList, placeholder } from "./module.js";
export type { ParamOptions, QuantizableModule } from "./module.js";
export { Embedding } from "./embedding.js";
export { Linear } from "./linear.js";
export { LayerNorm, RMSNorm } from "./norm.js";
export { ExpertLinear, localExperts, MoeFeedForward } from "./moe.js";
export type { AddModule, ExpertExchange, MoeConfig, MoeStats } from "./moe.js";
export { expertCapacity, routeTokens } from "./router.js";
export type { RouterOptions, Routing } from "./router.js";
