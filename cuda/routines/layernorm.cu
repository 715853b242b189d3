// layernorm.cu: y = (x - mean) * rstd * w + b over the last axis, one block per row; the forward saves
// mean and rstd per row. Backward with xhat = (x - mean) * rstd and g = dy * w:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw += dy * xhat,  db += dy (f32, atomic).
#include "common.cuh"

template <typename T>
__device__ void layernormFwd(T* y, float* stats, const T* x, const T* w, const T* b, int cols, float eps) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * cols;
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += kiln::ld(x, base + c);
  const float mean = kiln::blockSum(s, sh) / cols;
  float ss = 0.f;  // two passes: var from (x - mean)^2 keeps precision where mean is large
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { const float d = kiln::ld(x, base + c) - mean; ss += d * d; }
  const float rstd = rsqrtf(kiln::blockSum(ss, sh) / cols + eps);
  if (threadIdx.x == 0 && stats) { stats[2 * blockIdx.x] = mean; stats[2 * blockIdx.x + 1] = rstd; }
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    kiln::st(y, base + c, (kiln::ld(x, base + c) - mean) * rstd * kiln::ld(w, c) + (b ? kiln::ld(b, c) : 0.f));
  }
}

template <typename T>
__device__ void layernormBwd(T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, const float* stats, int cols) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * cols;
  const float mean = stats[2 * blockIdx.x], rstd = stats[2 * blockIdx.x + 1];
  float sg = 0.f, sgx = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = kiln::ld(dy, base + c) * kiln::ld(w, c), xh = (kiln::ld(x, base + c) - mean) * rstd;
    sg += g;
    sgx += g * xh;
  }
  const float mg = kiln::blockSum(sg, sh) / cols, mgx = kiln::blockSum(sgx, sh) / cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = kiln::ld(dy, base + c), xh = (kiln::ld(x, base + c) - mean) * rstd;
    kiln::st(dx, base + c, rstd * (d * kiln::ld(w, c) - mg - xh * mgx));
    if (dw) atomicAdd(&dw[c], d * xh);
    if (db) atomicAdd(&db[c], d);
  }
}

#define ENTRY(sfx, T) \
  extern "C" __global__ void layernorm_fwd_##sfx(T* y, float* stats, const T* x, const T* w, const T* b, int cols, float eps) { layernormFwd<T>(y, stats, x, w, b, cols, eps); } \
  extern "C" __global__ void layernorm_bwd_##sfx(T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, const float* stats, int cols) { layernormBwd<T>(dx, dw, db, dy, x, w, stats, cols); }
KILN_FLOAT_ENTRIES(ENTRY)
