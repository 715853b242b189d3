# torch_peer.py: the PyTorch side of npm run test:gpu's comparison, on the same GPU: matmul TFLOP/s (bf16,
# and fp8 e4m3 through torch._scaled_mm on sm_89+) and scaled_dot_product_attention forward and backward
# at the shapes bench/gpu/kernels.ts uses. Writes JSON to argv[1]; a case that fails records its error.
import json, sys, time
import torch

rows = []
def bench(name, fn, flops, reps=20):
    try:
        for _ in range(3): fn()
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(reps): fn()
        e1.record(); torch.cuda.synchronize()
        ms = e0.elapsed_time(e1) / reps
        rows.append({"name": name, "ms": ms, "tflops": flops / (ms * 1e9)})
    except Exception as err:  # a missing kernel (fp8 on an older GPU) must not stop the rest
        rows.append({"name": name, "error": str(err).splitlines()[0]})
    print(json.dumps(rows[-1]), flush=True)

dev = "cuda"
for n in (4096, 8192):
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16); b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    bench(f"torch bf16 matmul {n}^3", lambda: a @ b, 2 * n**3)
    if torch.cuda.get_device_capability() >= (8, 9):
        a8 = a.to(torch.float8_e4m3fn); b8 = b.t().contiguous().to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=dev)
        bench(f"torch fp8 e4m3 _scaled_mm {n}^3", lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16), 2 * n**3)
B, H, KVH, T, D = 4, 32, 8, 2048, 128
q = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
k = torch.randn(B, KVH, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
v = torch.randn(B, KVH, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
sdpa = torch.nn.functional.scaled_dot_product_attention
flops = 4 * B * H * T * T * D / 2
bench(f"torch sdpa fwd bf16 causal B{B} H{H} KVH{KVH} T{T} D{D}", lambda: sdpa(q, k, v, is_causal=True, enable_gqa=True), flops, 10)
o = sdpa(q, k, v, is_causal=True, enable_gqa=True); g = torch.randn_like(o)
bench(f"torch sdpa bwd bf16 causal B{B} H{H} KVH{KVH} T{T} D{D}", lambda: torch.autograd.grad(o, (q, k, v), g, retain_graph=True), 2.5 * flops, 5)
json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, open(sys.argv[1], "w"), indent=2)
