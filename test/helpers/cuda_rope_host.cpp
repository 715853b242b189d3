// cuda_rope_host.cpp: runs cuda/routines/rope.cu's rope_f32 on the cpu (cuda_routine_host.h). stdin:
// T, H, D (i32), base (f32), pos (T x i32), freqs (D/2 x f32), x (T*H*D x f32); stdout: x rotated.
#include "cuda_routine_host.h"
#include ROPE_CU

int main() {
  int dims[3];
  float base;
  if (fread(dims, 4, 3, stdin) != 3 || fread(&base, 4, 1, stdin) != 1) return 2;
  const int T = dims[0], H = dims[1], D = dims[2];
  int* pos = (int*)malloc(4 * T);
  float* freqs = (float*)malloc(4 * (D / 2));
  float* x = (float*)malloc(4 * (size_t)T * H * D);
  if (fread(pos, 4, T, stdin) != (size_t)T || fread(freqs, 4, D / 2, stdin) != (size_t)(D / 2) || fread(x, 4, (size_t)T * H * D, stdin) != (size_t)T * H * D) return 2;
  kiln_launch((long long)T * H * (D / 2), [&] { rope_f32(x, pos, freqs, T, H, D, base); });
  fwrite(x, 4, (size_t)T * H * D, stdout);
  free(pos); free(freqs); free(x);
  return 0;
}
