// attention.cu: flash-style attention forward, o = softmax(q k^T * scale [+ causal]) v, with q (B, H, Tq, D),
// k and v (B, KVH, Tk, D), H % KVH == 0 (grouped-query: head h reads kv head h / (H / KVH)), D a multiple
// of 32 and at most 128. Causal aligns queries to the end of the keys (query i sees keys j <= i + Tk - Tq),
// as the cpu routine does. One warp per query row, 4 per block; tiles of 32 keys and values are staged in
// shared memory once per block; each lane scores one key of a tile and the running max and sum (online
// softmax) rescale the output, so no T x T matrix is ever stored. Writes lse = max + log(sum) per row for
// the backward. Launch: grid (ceil(Tq/4), H, B), block 128.
// NOTE: a straightforward SIMT kernel: Hopper's fast path (wgmma, TMA, warp specialisation, FA3) is not
// written; test:gpu measures this against PyTorch's SDPA to say how far it is.
#include "common.cuh"

namespace {
constexpr int WARPS = 4, KT = 32, DMAX = 128, DPL = DMAX / 32;
}

template <typename T>
__device__ void attentionFwd(T* o, float* lse, const T* q, const T* k, const T* v, int H, int KVH, int Tq, int Tk, int D, float scale, int causal) {
  __shared__ float ks[KT][DMAX + 1], vs[KT][DMAX];
  __shared__ float qs[WARPS][DMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / KVH);
  const int row = blockIdx.x * WARPS + warp;
  const bool active = row < Tq;
  const long long qbase = (((long long)b * H + h) * Tq + row) * D;
  const long long kbase = ((long long)b * KVH + kvh) * Tk * D;
  for (int d = lane; d < D; d += 32) qs[warp][d] = active ? kiln::ld(q, qbase + d) * scale : 0.f;
  const int off = Tk - Tq;
  const int lastRow = min(Tq - 1, (int)blockIdx.x * WARPS + WARPS - 1);
  const int keyEnd = causal ? min(Tk, lastRow + off + 1) : Tk;  // keys any row of this block can see
  const int myEnd = causal ? min(Tk, row + off + 1) : Tk;
  float m = -INFINITY, l = 0.f, acc[DPL] = {};
  for (int j0 = 0; j0 < keyEnd; j0 += KT) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < KT * D; i += blockDim.x) {
      const int r = i / D, d = i % D, j = j0 + r;
      ks[r][d] = j < Tk ? kiln::ld(k, kbase + (long long)j * D + d) : 0.f;
      vs[r][d] = j < Tk ? kiln::ld(v, kbase + (long long)j * D + d) : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j < myEnd) {
      s = 0.f;
      for (int d = 0; d < D; d++) s = fmaf(qs[warp][d], ks[lane][d], s);
    }
    const float mNew = fmaxf(m, kiln::warpMax(s));
    if (mNew == -INFINITY) continue;  // every key so far masked: nothing to add
    const float p = s == -INFINITY ? 0.f : __expf(s - mNew);
    const float corr = __expf(m - mNew);
    l = l * corr + kiln::warpSum(p);
#pragma unroll
    for (int e = 0; e < DPL; e++) acc[e] *= corr;
    for (int jj = 0; jj < KT; jj++) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
      for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) acc[e] = fmaf(pj, vs[jj][lane + 32 * e], acc[e]);
    }
    m = mNew;
  }
  if (!active) return;
  const float inv = l > 0.f ? 1.f / l : 0.f;  // a row that sees no key (Tq > Tk, causal) gives zeros
#pragma unroll
  for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) kiln::st(o, qbase + lane + 32 * e, acc[e] * inv);
  if (lse && lane == 0) lse[((long long)b * H + h) * Tq + row] = l > 0.f ? m + __logf(l) : -INFINITY;
}

#define ENTRY(sfx, T) extern "C" __global__ void __launch_bounds__(128) attention_##sfx(T* o, float* lse, const T* q, const T* k, const T* v, int H, int KVH, int Tq, int Tk, int D, float scale, int causal) { attentionFwd<T>(o, lse, q, k, v, H, KVH, Tq, Tk, D, scale, causal); }
KILN_FLOAT_ENTRIES(ENTRY)
