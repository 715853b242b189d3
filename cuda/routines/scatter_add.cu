// scatter_add.cu: the embedding's backward: grad[ids[t], :] += dout[t, :] into an f32 accumulator (a token
// seen twice adds twice; f32 so bf16 gradients do not lose small updates). atomicAdd makes the order of
// equal ids unspecified: sums may differ in the last bits run to run. Ids out of range are skipped.
#include "common.cuh"

template <typename T>
__device__ void scatterAdd(float* grad, const T* dout, const int* ids, int T_, int D, int rows) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)T_ * D) return;
  const int t = (int)(i / D), id = ids[t];
  if (id < 0 || id >= rows) return;
  atomicAdd(&grad[(long long)id * D + i % D], kiln::ld(dout, i));
}

#define ENTRY(sfx, T) extern "C" __global__ void scatter_add_##sfx(float* grad, const T* dout, const int* ids, int T_, int D, int rows) { scatterAdd<T>(grad, dout, ids, T_, D, rows); }
KILN_FLOAT_ENTRIES(ENTRY)
