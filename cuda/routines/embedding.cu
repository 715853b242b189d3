// embedding.cu: out[t, :] = table[ids[t], :] (T tokens, D columns). An id outside [0, rows) gives a row
// of zeros and sets *bad (a device flag the host reads once per step) instead of reading out of bounds.
// One thread per output element; no block sync (host-checkable).
#include "common.cuh"

template <typename T>
__device__ void embedding(T* out, const T* table, const int* ids, int T_, int D, int rows, int* bad) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)T_ * D) return;
  const int t = (int)(i / D), id = ids[t];
  if (id < 0 || id >= rows) {
    kiln::st(out, i, 0.f);
    if (bad) atomicExch(bad, 1);
    return;
  }
  out[i] = table[(long long)id * D + i % D];
}

#define ENTRY(sfx, T) extern "C" __global__ void embedding_##sfx(T* out, const T* table, const int* ids, int T_, int D, int rows, int* bad) { embedding<T>(out, table, ids, T_, D, rows, bad); }
KILN_FLOAT_ENTRIES(ENTRY)
