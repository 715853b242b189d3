// shaders.ts: the WGSL routines of shaders/, bundled into the page's code (a browser has no files to
// read them from) and handed to the webgpu backend before it builds a routine.
import { setShaderTexts } from "../../../src/web.js";
import attention from "../../../shaders/attention.wgsl?raw";
import attention_backward from "../../../shaders/attention_backward.wgsl?raw";
import concat from "../../../shaders/concat.wgsl?raw";
import kv_write from "../../../shaders/kv_write.wgsl?raw";
import matmul from "../../../shaders/matmul.wgsl?raw";
import matmul_q from "../../../shaders/matmul_q.wgsl?raw";
import paged_attention from "../../../shaders/paged_attention.wgsl?raw";
import scatter_add from "../../../shaders/scatter_add.wgsl?raw";
import softmax from "../../../shaders/softmax.wgsl?raw";

export function installShaders(): void {
  setShaderTexts({ attention, attention_backward, concat, kv_write, matmul, matmul_q, paged_attention, scatter_add, softmax });
}
