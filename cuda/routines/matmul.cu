// matmul.cu: kiln's own tiled matmul, row-major C[M,N] = A[M,K] B[K,N] (batched by blockIdx.z with element
// strides, 0 broadcasting), for where cuBLASLt is missing or loses (tiny or odd shapes). 64x64 tiles of C
// per block of 256 threads, each thread a 4x4 micro-tile from 16-deep slices of A and B in shared memory,
// f32 accumulation. Not Hopper's wgmma path: cuBLASLt is the fast one there (docs/cuda.md).
#include "common.cuh"

namespace {
constexpr int BM = 64, BN = 64, BK = 16;
}

template <typename T>
__device__ void matmul(T* C, const T* A, const T* B, int M, int N, int K, long long sA, long long sB) {
  __shared__ float as[BK][BM + 4];  // +4: rows of As start on different banks
  __shared__ float bs[BK][BN];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
  A += blockIdx.z * sA;
  B += blockIdx.z * sB;
  C += (long long)blockIdx.z * M * N;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += BK) {
    for (int i = threadIdx.x; i < BM * BK; i += 256) {
      const int r = i / BK, k = i % BK, gr = row0 + r, gk = k0 + k;
      as[k][r] = gr < M && gk < K ? kiln::ld(A, (long long)gr * K + gk) : 0.f;
    }
    for (int i = threadIdx.x; i < BK * BN; i += 256) {
      const int k = i / BN, c = i % BN, gk = k0 + k, gc = col0 + c;
      bs[k][c] = gk < K && gc < N ? kiln::ld(B, (long long)gk * N + gc) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; k++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) { a[i] = as[k][ty * 4 + i]; b[i] = bs[k][tx * 4 + i]; }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      const int r = row0 + ty * 4 + i, c = col0 + tx * 4 + j;
      if (r < M && c < N) kiln::st(C, (long long)r * N + c, acc[i][j]);
    }
}

// Launch: grid (ceil(N/64), ceil(M/64), batch), block 256.
#define ENTRY(sfx, T) extern "C" __global__ void __launch_bounds__(256) matmul_##sfx(T* C, const T* A, const T* B, int M, int N, int K, long long sA, long long sB) { matmul<T>(C, A, B, M, N, K, sA, sB); }
KILN_FLOAT_ENTRIES(ENTRY)
