// paged_attention.cu: attention for a ragged batch of tokens over a paged KV cache (the routine spec of
// src/core/routines.ts): token t of sequence tokenSeq[t] at position tokenPos[t] attends to that
// sequence's cached keys 0..tokenPos[t], so one launch serves decode (one token per sequence) and a
// prefill chunk alike. q (T, H, D); kCache, vCache (blocks, blockSize, KVH, D); blockTables (S, maxBlocks):
// the cache blocks of sequence s in order. A token with tokenPos < 0 is padding: its output is 0.
// One warp per (head, token): each lane scores one of 32 keys at a time, online softmax as in
// attention.cu, lanes own D/32 output elements. D a multiple of 32, at most 128. A block id outside the
// cache gives zeros and sets *bad (never an out-of-range read). Launch: grid (H, T), block 32.
#include "common.cuh"

namespace {
constexpr int DMAX = 128, DPL = DMAX / 32;
}

template <typename T>
__device__ void pagedAttention(T* o, const T* q, const T* kc, const T* vc, const int* tables, const int* tokenSeq, const int* tokenPos, int H,
                               int KVH, int D, int blockSize, int maxBlocks, int numBlocks, int numSeqs, float scale, int* bad) {
  __shared__ float qs[DMAX];
  const int lane = threadIdx.x, h = blockIdx.x, tok = blockIdx.y, kvh = h / (H / KVH);
  const int s = tokenSeq[tok], pos = tokenPos[tok];
  // Padding, or a sequence index outside the block tables: no keys (output 0); the latter is flagged.
  const bool seqOk = s >= 0 && s < numSeqs;
  if (pos >= 0 && !seqOk && lane == 0 && bad) atomicExch(bad, 1);
  const int len = pos >= 0 && seqOk ? pos + 1 : 0;
  const long long qb = ((long long)tok * H + h) * D;
  for (int d = lane; d < D; d += 32) qs[d] = kiln::ld(q, qb + d) * scale;
  __syncwarp();
  float m = -INFINITY, l = 0.f, acc[DPL] = {};
  for (int t0 = 0; t0 < len; t0 += 32) {
    const int t = t0 + lane;
    long long kb = -1;
    if (t < len) {
      const int blk = t / blockSize < maxBlocks ? tables[(long long)s * maxBlocks + t / blockSize] : -1;
      if (blk >= 0 && blk < numBlocks) kb = (((long long)blk * blockSize + t % blockSize) * KVH + kvh) * D;
      else if (bad) atomicExch(bad, 1);
    }
    float sc = -INFINITY;
    if (kb >= 0) {
      sc = 0.f;
      for (int d = 0; d < D; d++) sc = fmaf(qs[d], kiln::ld(kc, kb + d), sc);
    }
    const float mNew = fmaxf(m, kiln::warpMax(sc));
    if (mNew == -INFINITY) continue;
    const float p = sc == -INFINITY ? 0.f : __expf(sc - mNew), corr = __expf(m - mNew);
    l = l * corr + kiln::warpSum(p);
#pragma unroll
    for (int e = 0; e < DPL; e++) acc[e] *= corr;
    for (int jj = 0; jj < 32; jj++) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const long long vb = __shfl_sync(0xffffffffu, kb, jj);
      if (pj == 0.f || vb < 0) continue;  // uniform across the warp: pj and vb are broadcast
#pragma unroll
      for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) acc[e] = fmaf(pj, kiln::ld(vc, vb + lane + 32 * e), acc[e]);
    }
    m = mNew;
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int e = 0; e < DPL; e++) if (lane + 32 * e < D) kiln::st(o, qb + lane + 32 * e, acc[e] * inv);
}

#define ENTRY(sfx, T) extern "C" __global__ void __launch_bounds__(32) paged_attention_##sfx(T* o, const T* q, const T* kc, const T* vc, const int* tables, const int* tokenSeq, const int* tokenPos, int H, int KVH, int D, int blockSize, int maxBlocks, int numBlocks, int numSeqs, float scale, int* bad) { \
    pagedAttention<T>(o, q, kc, vc, tables, tokenSeq, tokenPos, H, KVH, D, blockSize, maxBlocks, numBlocks, numSeqs, scale, bad); \
  }
KILN_FLOAT_ENTRIES(ENTRY)
