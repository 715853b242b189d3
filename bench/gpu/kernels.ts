// kernels.ts: the GPU benchmarks of npm run test:gpu (run.mjs starts it with the results path): matmul
// TFLOP/s through cuBLASLt (bf16, fp8 e4m3 on sm_89+) and kiln's own tiled matmul.cu, attention forward
// and backward (cuda/routines/attention*.cu, causal, bf16), and the copy bandwidth that bounds decode.
// Timed with CUDA events around `reps` launches after warm-up; each case reports its own error instead of
// stopping the rest. Writes JSON to argv[2].
// NOTE: never run yet (no GPU was lent while it was written); docs/cuda.md says so.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openRuntime, type CudaRuntime, type Handle, type LtType } from "../../src/backends/cuda/runtime.js";

interface Row { readonly name: string; readonly ms?: number; readonly tflops?: number; readonly gbps?: number; readonly error?: string }
const rows: Row[] = [];
const out = process.argv[2] ?? "bench/results/gpu-kernels.json";
const { rt, props } = openRuntime();
const stream = rt.streamCreate();
const ws = rt.memAlloc(32 << 20);

/** Median-free mean over reps (events bracket the whole loop, so launch gaps count, as in a real step). */
function time(reps: number, body: () => void): number {
  for (let i = 0; i < 3; i++) body();
  const e0 = rt.eventCreate(), e1 = rt.eventCreate();
  rt.eventRecord(e0, stream);
  for (let i = 0; i < reps; i++) body();
  rt.eventRecord(e1, stream);
  const ms = rt.eventElapsed(e0, e1) / reps;
  rt.eventDestroy(e0);
  rt.eventDestroy(e1);
  return ms;
}

function bench(name: string, f: () => Omit<Row, "name">): void {
  try {
    rows.push({ name, ...f() });
  } catch (err) {
    rows.push({ name, error: (err as Error).message.split("\n").slice(0, 3).join(" ") });
  }
  console.log(JSON.stringify(rows[rows.length - 1]));
}

const bytesOf: Record<LtType, number> = { f32: 4, f16: 2, bf16: 2, e4m3: 1, e5m2: 1 };

function ltMatmul(n: number, t: LtType): Omit<Row, "name"> {
  const a = rt.memAlloc(n * n * bytesOf[t]), b = rt.memAlloc(n * n * bytesOf[t]), d = rt.memAlloc(n * n * 2);
  const one = rt.memAlloc(4);
  rt.copyHtoD(one, new Float32Array([1]), 0n);
  for (const p of [a, b]) rt.memset(p, 0x3c, n * n * bytesOf[t], stream); // small finite values in every dtype
  const fp8 = t === "e4m3" || t === "e5m2";
  const ms = time(20, () => rt.matmul({ a, b, d, m: n, n, k: n, transA: fp8, aType: t, bType: t, dType: fp8 ? "bf16" : t, aScale: fp8 ? one : undefined, bScale: fp8 ? one : undefined, workspace: ws, workspaceBytes: 32 << 20, stream }));
  for (const p of [a, b, d, one]) rt.memFree(p);
  return { ms, tflops: (2 * n ** 3) / (ms * 1e9) };
}

/** Loads a routine's fatbin, built here by nvcc for this GPU (the GPU machine has nvcc). */
function routine(file: string, entry: string): Handle {
  const src = join("cuda", "routines", file);
  const bin = join("/tmp", `kiln-${file}.cubin`);
  execFileSync("nvcc", ["-cubin", `-arch=sm_${props.major}${props.minor}${props.major === 9 ? "a" : ""}`, "-O3", "-o", bin, src], { stdio: "inherit" });
  return rt.moduleFunction(rt.moduleLoad(readFileSync(bin)), entry);
}

function ownMatmul(rt: CudaRuntime, n: number): Omit<Row, "name"> {
  const fn = routine("matmul.cu", "matmul_bf16");
  const a = rt.memAlloc(n * n * 2), b = rt.memAlloc(n * n * 2), c = rt.memAlloc(n * n * 2);
  const grid = [Math.ceil(n / 64), Math.ceil(n / 64), 1] as const;
  const ms = time(10, () => rt.launch(fn, grid, [256, 1, 1], 0, stream, [c, a, b, n, n, n, 0, 0], "pppiiiqq"));
  for (const p of [a, b, c]) rt.memFree(p);
  return { ms, tflops: (2 * n ** 3) / (ms * 1e9) };
}

function attention(B: number, H: number, KVH: number, T: number, D: number, backward: boolean): Omit<Row, "name"> {
  const fwd = routine("attention.cu", "attention_bf16");
  const q = rt.memAlloc(B * H * T * D * 2), k = rt.memAlloc(B * KVH * T * D * 2), v = rt.memAlloc(B * KVH * T * D * 2);
  const o = rt.memAlloc(B * H * T * D * 2), lse = rt.memAlloc(B * H * T * 4);
  rt.memset(q, 0x3c, B * H * T * D * 2, stream);
  for (const p of [k, v]) rt.memset(p, 0x3c, B * KVH * T * D * 2, stream);
  const scale = 1 / Math.sqrt(D);
  const grid = [Math.ceil(T / 4), H, B] as const;
  const runFwd = () => rt.launch(fwd, grid, [128, 1, 1], 0, stream, [o, lse, q, k, v, H, KVH, T, T, D, scale, 1], "pppppiiiiifi");
  let ms: number;
  const flops = (4 * B * H * T * T * D) / 2; // causal: half the scores
  if (!backward) ms = time(10, runFwd);
  else {
    runFwd();
    const delta = routine("attention_backward.cu", "attention_bwd_delta_bf16"), dq = routine("attention_backward.cu", "attention_bwd_dq_bf16"), dkdv = routine("attention_backward.cu", "attention_bwd_dkdv_bf16");
    const dO = rt.memAlloc(B * H * T * D * 2), dl = rt.memAlloc(B * H * T * 4), gq = rt.memAlloc(B * H * T * D * 2), gk = rt.memAlloc(B * KVH * T * D * 2), gv = rt.memAlloc(B * KVH * T * D * 2);
    ms = time(5, () => {
      rt.launch(delta, grid, [128, 1, 1], 0, stream, [dl, o, dO, H, T, D], "pppiii");
      rt.launch(dq, grid, [128, 1, 1], 0, stream, [gq, q, k, v, dO, lse, dl, H, KVH, T, T, D, scale, 1], "pppppppiiiiifi");
      rt.launch(dkdv, [Math.ceil(T / 4), KVH, B], [128, 1, 1], 0, stream, [gk, gv, q, k, v, dO, lse, dl, H, KVH, T, T, D, scale, 1], "ppppppppiiiiifi");
    });
    for (const p of [dO, dl, gq, gk, gv]) rt.memFree(p);
  }
  for (const p of [q, k, v, o, lse]) rt.memFree(p);
  return { ms, tflops: ((backward ? 2.5 : 1) * flops) / (ms * 1e9) };
}

function copyBandwidth(bytes: number): Omit<Row, "name"> {
  const a = rt.memAlloc(bytes), b = rt.memAlloc(bytes);
  const ms = time(20, () => rt.copyDtoD(b, a, bytes, stream));
  rt.memFree(a);
  rt.memFree(b);
  return { ms, gbps: (2 * bytes) / (ms * 1e6) }; // read + write
}

bench("copy bandwidth 1 GiB (DtoD)", () => copyBandwidth(1 << 30));
for (const n of [4096, 8192]) bench(`cuBLASLt bf16 ${n}^3`, () => ltMatmul(n, "bf16"));
if (props.major * 10 + props.minor >= 89) for (const n of [4096, 8192]) bench(`cuBLASLt fp8 e4m3 ${n}^3`, () => ltMatmul(n, "e4m3"));
bench("kiln matmul.cu bf16 4096^3", () => ownMatmul(rt, 4096));
bench("attention fwd bf16 causal B4 H32 KVH8 T2048 D128", () => attention(4, 32, 8, 2048, 128, false));
bench("attention bwd bf16 causal B4 H32 KVH8 T2048 D128", () => attention(4, 32, 8, 2048, 128, true));
rt.streamSynchronize(stream);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), device: props.name, sm: `${props.major}${props.minor}`, rows }, null, 2));
