// softmax.cu: softmax over the last axis of (rows, cols): one block per row, max and sum by block
// reductions (fixed order), three passes over a row that stays in L2.
#include "common.cuh"

template <typename T, typename O>
__device__ void softmax(O* out, const T* x, int cols) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * cols;
  float mx = -INFINITY;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, kiln::ld(x, base + c));
  mx = kiln::blockMax(mx, sh);
  float sum = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += __expf(kiln::ld(x, base + c) - mx);
  const float inv = 1.f / kiln::blockSum(sum, sh);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) kiln::st(out, base + c, __expf(kiln::ld(x, base + c) - mx) * inv);
}

#define ENTRY(sfx, T) extern "C" __global__ void softmax_##sfx(T* out, const T* x, int cols) { softmax<T, T>(out, x, cols); }
KILN_FLOAT_ENTRIES(ENTRY)
