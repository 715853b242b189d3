// adamw.cu: one fused AdamW step over f32 master weights p, moments m and v, and gradients g in any float
// dtype (bf16 training keeps f32 masters). Decoupled weight decay (Loshchilov & Hutter): p -= lr * wd * p
// before the Adam update. bc1 = 1 - beta1^t and bc2 = 1 - beta2^t come from the host (one pow per step,
// not per element). One thread per element; no block sync (host-checkable).
#include "common.cuh"

template <typename G>
__device__ void adamw(float* p, float* m, float* v, const G* g, long long n, float lr, float beta1, float beta2,
                      float eps, float wd, float bc1, float bc2, float gradScale) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gi = kiln::ld(g, i) * gradScale;
  const float mi = beta1 * m[i] + (1.f - beta1) * gi;
  const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  const float pi = p[i] * (1.f - lr * wd);
  p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
}

#define ENTRY(sfx, G) extern "C" __global__ void adamw_##sfx(float* p, float* m, float* v, const G* g, long long n, float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2, float gradScale) { adamw<G>(p, m, v, g, n, lr, beta1, beta2, eps, wd, bc1, bc2, gradScale); }
KILN_FLOAT_ENTRIES(ENTRY)
