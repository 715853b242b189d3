// rope.cu: rotary position embedding in place on x (T, H, D), rotate-half (Llama) pairing: element i
// pairs with i + D/2, angle pos[t] * base^(-2i/D). One thread per pair; no block sync (host-checkable).
#include "common.cuh"

template <typename T>
__device__ void rope(T* x, const int* pos, int T_, int H, int D, float base) {
  const long long half = D / 2, idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (long long)T_ * H * half) return;
  const long long i = idx % half, row = idx / half, t = row / H;
  const float inv = powf(base, -2.f * (float)i / (float)D);
  float s, c;
  sincosf((float)pos[t] * inv, &s, &c);
  const long long a = row * D + i, b = a + half;
  const float x0 = kiln::ld(x, a), x1 = kiln::ld(x, b);
  kiln::st(x, a, x0 * c - x1 * s);
  kiln::st(x, b, x1 * c + x0 * s);
}

#define ENTRY(sfx, T) extern "C" __global__ void rope_##sfx(T* x, const int* pos, int T_, int H, int D, float base) { rope<T>(x, pos, T_, H, D, base); }
KILN_FLOAT_ENTRIES(ENTRY)
