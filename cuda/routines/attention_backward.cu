// attention_backward.cu: the backward of attention.cu (same shapes and masking), flash-style: nothing of
// size T x T is stored; scores are recomputed from q, k and the forward's lse. Three kernels:
//   attention_bwd_delta: delta[b,h,i] = sum_d dO[i,d] * O[i,d]                (warp per row)
//   attention_bwd_dq:    dq[i] = scale * sum_j p_ij (dp_ij - delta_i) k_j      (warp per query row)
//   attention_bwd_dkdv:  dv[j] = sum_{h in group, i} p_ij dO_i,
//                        dk[j] = scale * sum_{h in group, i} p_ij (dp_ij - delta_i) q_i   (warp per key row)
// with p_ij = exp(scale q_i.k_j - lse_i) and dp_ij = dO_i.v_j. The key-major kernel sums the group's
// query heads itself (grouped-query), so no atomics: results reproduce run to run.
// Launch: delta grid (ceil(Tq/4), H, B); dq grid (ceil(Tq/4), H, B); dkdv grid (ceil(Tk/4), KVH, B); block 128.
#include "common.cuh"

namespace {
constexpr int WARPS = 4, KT = 32, DMAX = 128, DPL = DMAX / 32;
}

template <typename T>
__device__ void bwdDelta(float* delta, const T* o, const T* dO, int H, int Tq, int D) {
  const int lane = threadIdx.x & 31, row = blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (row >= Tq) return;
  const long long r = ((long long)blockIdx.z * H + blockIdx.y) * Tq + row;
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s += kiln::ld(o, r * D + d) * kiln::ld(dO, r * D + d);
  s = kiln::warpSum(s);
  if (lane == 0) delta[r] = s;
}

template <typename T>
__device__ void bwdDq(T* dq, const T* q, const T* k, const T* v, const T* dO, const float* lse, const float* delta,
                      int H, int KVH, int Tq, int Tk, int D, float scale, int causal) {
  __shared__ float ks[KT][DMAX + 1], vs[KT][DMAX + 1];
  __shared__ float qs[WARPS][DMAX], gs[WARPS][DMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / KVH), row = blockIdx.x * WARPS + warp;
  const bool active = row < Tq;
  const long long r = ((long long)b * H + h) * Tq + row, kbase = ((long long)b * KVH + kvh) * Tk * D;
  for (int d = lane; d < D; d += 32) { qs[warp][d] = active ? kiln::ld(q, r * D + d) : 0.f; gs[warp][d] = active ? kiln::ld(dO, r * D + d) : 0.f; }
  const float L = active ? lse[r] : 0.f, Di = active ? delta[r] : 0.f;
  const int off = Tk - Tq, lastRow = min(Tq - 1, (int)blockIdx.x * WARPS + WARPS - 1);
  const int keyEnd = causal ? min(Tk, lastRow + off + 1) : Tk, myEnd = causal ? min(Tk, row + off + 1) : Tk;
  float acc[DPL] = {};
  for (int j0 = 0; j0 < keyEnd; j0 += KT) {
    __syncthreads();
    for (int i = threadIdx.x; i < KT * D; i += blockDim.x) {
      const int rr = i / D, d = i % D, j = j0 + rr;
      ks[rr][d] = j < Tk ? kiln::ld(k, kbase + (long long)j * D + d) : 0.f;
      vs[rr][d] = j < Tk ? kiln::ld(v, kbase + (long long)j * D + d) : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    float ds = 0.f;
    if (j0 + lane < myEnd && L != -INFINITY) {
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < D; d++) { s = fmaf(qs[warp][d], ks[lane][d], s); dp = fmaf(gs[warp][d], vs[lane][d], dp); }
      ds = __expf(s * scale - L) * (dp - Di);
    }
    for (int jj = 0; jj < KT; jj++) {
      const float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
      for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) acc[e] = fmaf(dsj, ks[jj][lane + 32 * e], acc[e]);
    }
  }
  if (!active) return;
#pragma unroll
  for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) kiln::st(dq, r * D + lane + 32 * e, acc[e] * scale);
}

template <typename T>
__device__ void bwdDkdv(T* dk, T* dv, const T* q, const T* k, const T* v, const T* dO, const float* lse, const float* delta,
                        int H, int KVH, int Tq, int Tk, int D, float scale, int causal) {
  __shared__ float qs[KT][DMAX + 1], gs[KT][DMAX + 1];
  __shared__ float kw[WARPS][DMAX], vw[WARPS][DMAX];
  __shared__ float Ls[KT], Ds[KT];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kvh = blockIdx.y, b = blockIdx.z, G = H / KVH, key = blockIdx.x * WARPS + warp;
  const bool active = key < Tk;
  const long long kr = ((long long)b * KVH + kvh) * Tk + key;
  for (int d = lane; d < D; d += 32) { kw[warp][d] = active ? kiln::ld(k, kr * D + d) : 0.f; vw[warp][d] = active ? kiln::ld(v, kr * D + d) : 0.f; }
  const int off = Tk - Tq, firstKey = blockIdx.x * WARPS;
  // Query i sees key j when i >= j - off: the block's first key bounds where its queries start.
  const int qStart = causal ? max(0, firstKey - off) : 0, myStart = causal ? max(0, key - off) : 0;
  float ak[DPL] = {}, av[DPL] = {};
  for (int g = 0; g < G; g++) {
    const int h = kvh * G + g;
    const long long qbase = ((long long)b * H + h) * Tq;
    for (int i0 = qStart - qStart % KT; i0 < Tq; i0 += KT) {
      __syncthreads();
      for (int i = threadIdx.x; i < KT * D; i += blockDim.x) {
        const int rr = i / D, d = i % D, qi = i0 + rr;
        qs[rr][d] = qi < Tq ? kiln::ld(q, (qbase + qi) * D + d) : 0.f;
        gs[rr][d] = qi < Tq ? kiln::ld(dO, (qbase + qi) * D + d) : 0.f;
      }
      if (threadIdx.x < KT) {
        const int qi = i0 + threadIdx.x;
        Ls[threadIdx.x] = qi < Tq ? lse[qbase + qi] : -INFINITY;
        Ds[threadIdx.x] = qi < Tq ? delta[qbase + qi] : 0.f;
      }
      __syncthreads();
      if (!active) continue;
      const int qi = i0 + lane;
      float p = 0.f, ds = 0.f;
      if (qi < Tq && qi >= myStart && Ls[lane] != -INFINITY) {
        float s = 0.f, dp = 0.f;
        for (int d = 0; d < D; d++) { s = fmaf(qs[lane][d], kw[warp][d], s); dp = fmaf(gs[lane][d], vw[warp][d], dp); }
        p = __expf(s * scale - Ls[lane]);
        ds = p * (dp - Ds[lane]);
      }
      for (int ii = 0; ii < KT; ii++) {
        const float pi = __shfl_sync(0xffffffffu, p, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
        for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) { av[e] = fmaf(pi, gs[ii][lane + 32 * e], av[e]); ak[e] = fmaf(dsi, qs[ii][lane + 32 * e], ak[e]); }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) { kiln::st(dk, kr * D + lane + 32 * e, ak[e] * scale); kiln::st(dv, kr * D + lane + 32 * e, av[e]); }
}

#define ENTRY(sfx, T) \
  extern "C" __global__ void __launch_bounds__(128) attention_bwd_delta_##sfx(float* delta, const T* o, const T* dO, int H, int Tq, int D) { bwdDelta<T>(delta, o, dO, H, Tq, D); } \
  extern "C" __global__ void __launch_bounds__(128) attention_bwd_dq_##sfx(T* dq, const T* q, const T* k, const T* v, const T* dO, const float* lse, const float* delta, int H, int KVH, int Tq, int Tk, int D, float scale, int causal) { bwdDq<T>(dq, q, k, v, dO, lse, delta, H, KVH, Tq, Tk, D, scale, causal); } \
  extern "C" __global__ void __launch_bounds__(128) attention_bwd_dkdv_##sfx(T* dk, T* dv, const T* q, const T* k, const T* v, const T* dO, const float* lse, const float* delta, int H, int KVH, int Tq, int Tk, int D, float scale, int causal) { bwdDkdv<T>(dk, dv, q, k, v, dO, lse, delta, H, KVH, Tq, Tk, D, scale, causal); }
KILN_FLOAT_ENTRIES(ENTRY)
