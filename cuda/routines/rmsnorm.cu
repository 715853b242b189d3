// rmsnorm.cu: y = x * rstd * w with rstd = (mean(x^2) + eps)^-1/2 over the last axis, one block per row.
// The forward saves rstd per row; the backward uses it:
//   dx = rstd * (w*dy - x * rstd^2 * mean(w*dy*x)),  dw += dy * x * rstd (f32, atomic across rows).
#include "common.cuh"

template <typename T>
__device__ void rmsnormFwd(T* y, float* rstdOut, const T* x, const T* w, int cols, float eps) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { const float v = kiln::ld(x, base + c); ss += v * v; }
  const float rstd = rsqrtf(kiln::blockSum(ss, sh) / cols + eps);
  if (threadIdx.x == 0 && rstdOut) rstdOut[blockIdx.x] = rstd;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) kiln::st(y, base + c, kiln::ld(x, base + c) * rstd * kiln::ld(w, c));
}

template <typename T>
__device__ void rmsnormBwd(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstdIn, int cols) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * cols;
  const float rstd = rstdIn[blockIdx.x];
  float dot = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) dot += kiln::ld(w, c) * kiln::ld(dy, base + c) * kiln::ld(x, base + c);
  const float k = kiln::blockSum(dot, sh) / cols * rstd * rstd;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xv = kiln::ld(x, base + c), g = kiln::ld(dy, base + c);
    kiln::st(dx, base + c, rstd * (kiln::ld(w, c) * g - xv * k));
    if (dw) atomicAdd(&dw[c], g * xv * rstd);
  }
}

#define ENTRY(sfx, T) \
  extern "C" __global__ void rmsnorm_fwd_##sfx(T* y, float* rstd, const T* x, const T* w, int cols, float eps) { rmsnormFwd<T>(y, rstd, x, w, cols, eps); } \
  extern "C" __global__ void rmsnorm_bwd_##sfx(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstd, int cols) { rmsnormBwd<T>(dx, dw, dy, x, w, rstd, cols); }
KILN_FLOAT_ENTRIES(ENTRY)
