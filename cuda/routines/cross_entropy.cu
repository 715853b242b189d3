// cross_entropy.cu: softmax cross-entropy fused with its gradient, one block per row of logits (rows,
// vocab): loss[r] = logsumexp(x[r]) - x[r, target[r]], and in the same pass over the row
// dlogits[r] = (softmax(x[r]) - onehot(target[r])) * gradScale (gradScale = 1 / counted rows for a mean),
// written over the logits when dlogits == logits, so a 50k-vocab batch needs no second buffer.
// A target < 0 (padding) gives loss 0 and a zero gradient row.
#include "common.cuh"

template <typename T>
__device__ void crossEntropy(float* loss, T* dlogits, const T* logits, const int* target, int vocab, float gradScale) {
  __shared__ float sh[32];
  const long long base = (long long)blockIdx.x * vocab;
  const int tgt = target[blockIdx.x];
  float mx = -INFINITY;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) mx = fmaxf(mx, kiln::ld(logits, base + c));
  mx = kiln::blockMax(mx, sh);
  float sum = 0.f;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) sum += __expf(kiln::ld(logits, base + c) - mx);
  sum = kiln::blockSum(sum, sh);
  const float lse = mx + __logf(sum);
  // Read the target's logit before any thread overwrites the row with its gradient.
  const float xt = tgt >= 0 && tgt < vocab ? kiln::ld(logits, base + tgt) : 0.f;
  __syncthreads();
  if (threadIdx.x == 0) loss[blockIdx.x] = tgt >= 0 && tgt < vocab ? lse - xt : 0.f;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
    const float p = __expf(kiln::ld(logits, base + c) - lse);
    kiln::st(dlogits, base + c, tgt < 0 ? 0.f : (p - (c == tgt ? 1.f : 0.f)) * gradScale);
  }
}

#define ENTRY(sfx, T) extern "C" __global__ void cross_entropy_##sfx(float* loss, T* dlogits, const T* logits, const int* target, int vocab, float gradScale) { crossEntropy<T>(loss, dlogits, logits, target, vocab, gradScale); }
KILN_FLOAT_ENTRIES(ENTRY)
