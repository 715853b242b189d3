// wasm_elementwise.ts runs the cpu backend's f32 elementwise kernels as WebAssembly SIMD (render_wasm.ts)
// where that spelling exists, and the JS function otherwise. A launch copies each input buffer into one
// wasm memory shared by every such kernel, runs the kernel over it and copies the output back.
// NOTE: measured in the small GPT-2's training step (idle AMD EPYC, 2026-12-07, KILN_PROFILE): its GELU
// forward (768x512, tanh) 2.9 -> 1.1 ms per launch, copies included, and the whole step 137 -> 110 ms.
// A kernel that reads a few elements of a large buffer (an embedding row) would spend its time copying,
// so those launches run as JS.
// It owns that memory and the choice per launch; not the lowering (render_wasm.ts) nor the JS (render_js.ts).

import type { KernelSpec } from "../../../core/ir.js";
import { WasmArena } from "./arena.js";
import { encodeModule } from "./encoder.js";
import { NotVectorizable, renderWasmKernel } from "./render_wasm.js";

/** Whether generated kernels may run as wasm: KILN_CPU_WASM_KERNELS=0 turns it off (to compare the two). */
export function wasmKernelsEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.KILN_CPU_WASM_KERNELS !== "0" && typeof WebAssembly === "object";
}

let memory: WebAssembly.Memory | undefined;
let arena: WasmArena | undefined;

function sharedArena(): { memory: WebAssembly.Memory; arena: WasmArena } {
  memory ??= new WebAssembly.Memory({ initial: 1 });
  arena ??= new WasmArena(memory, "cpu elementwise kernels");
  return { memory, arena };
}

/** Outputs below this many elements stay JS: a call into wasm and the copies cost more than the loop. */
const MIN_ELEMENTS = 256;
/** A launch whose inputs hold more than this many elements per output element runs as JS (see the header). */
const MAX_INPUT_RATIO = 4;
/**
 * Nor does one that would need more wasm memory than this: the memory never shrinks, and a kernel over a
 * whole large weight (a conversion at load time) would keep that much for the life of the process.
 */
const MAX_BYTES = 64 << 20;

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

export interface WasmElementwise {
  /** Runs the kernel over f32 views (slot 0 the output); false where this launch should run as JS instead. */
  run(views: readonly ArrayBufferView[]): boolean;
}

/** The wasm spelling of a kernel, or undefined with the reason (it then runs as JS). */
export function compileWasmElementwise(k: KernelSpec): { kernel: WasmElementwise } | { why: string } {
  if (k.n < MIN_ELEMENTS) return { why: `${k.n} elements: too few to pay for a call into wasm` };
  let rendered;
  try {
    rendered = renderWasmKernel(k);
  } catch (e) {
    if (e instanceof NotVectorizable) return { why: e.message };
    throw e;
  }
  const { memory: mem, arena: a } = sharedArena();
  const module = new WebAssembly.Module(encodeModule([{ name: "run", body: rendered.body }]));
  const run = new WebAssembly.Instance(module, { env: { memory: mem } }).exports.run as (...args: number[]) => void;
  const n = k.n;
  const slots = rendered.shape.slots;
  const args = new Array<number>(2 + 2 * slots.length).fill(0);
  return {
    kernel: {
      run(views) {
        let total = 0;
        for (const s of slots) total += (views[s] as Float32Array).length;
        if (total > MAX_INPUT_RATIO * n + 65536) return false;
        // Layout (bytes): the output, then each input with 16 bytes of slack (a vector load's tail).
        let at = align16(n * 4);
        const offsets = slots.map((s) => {
          const here = at;
          at += align16((views[s] as Float32Array).length * 4 + 16);
          return here;
        });
        if (at > MAX_BYTES) return false;
        const heap = a.reserve(at);
        slots.forEach((s, i) => {
          const v = views[s] as Float32Array;
          heap.set(v, offsets[i]! >> 2);
          args[2 + 2 * i] = offsets[i]!;
          args[3 + 2 * i] = v.length;
        });
        args[0] = n / 4;
        args[1] = 0;
        run(...args);
        (views[0] as Float32Array).set(heap.subarray(0, n));
        return true;
      },
    },
  };
}
