// rope.cu: rotary position embedding in place on x (T, H, D), in kiln's convention (src/models/rope.ts:
// Meta / llama2.c / GGUF): elements 2i and 2i+1 of a head are a pair, rotated by pos[t] * base^(-2i/D).
// freqs (D/2 floats, from ropeFrequencies on the host, so Llama 3.1 scaling needs no second kernel) may
// be null for the plain base^(-2i/D). One thread per pair; no block sync (host-checked).
#include "common.cuh"

template <typename T>
__device__ void rope(T* x, const int* pos, const float* freqs, int T_, int H, int D, float base) {
  const long long half = D / 2, idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (long long)T_ * H * half) return;
  const long long i = idx % half, row = idx / half, t = row / H;
  const float inv = freqs ? freqs[i] : powf(base, -2.f * (float)i / (float)D);
  float s, c;
  sincosf((float)pos[t] * inv, &s, &c);
  const long long a = row * D + 2 * i, b = a + 1;
  const float x0 = kiln::ld(x, a), x1 = kiln::ld(x, b);
  kiln::st(x, a, x0 * c - x1 * s);
  kiln::st(x, b, x1 * c + x0 * s);
}

#define ENTRY(sfx, T) extern "C" __global__ void rope_##sfx(T* x, const int* pos, const float* freqs, int T_, int H, int D, float base) { rope<T>(x, pos, freqs, T_, H, D, base); }
KILN_FLOAT_ENTRIES(ENTRY)
