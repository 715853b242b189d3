/* q4k_ref.c: llama.cpp's own Q4_K reference (de)quantizer from its libggml-base, as a filter for
 * bench/peers/q4k_interop.ts: `q4k_ref q IN OUT N` quantizes N f32 (quantize_row_q4_K_ref) to blocks;
 * `q4k_ref d IN OUT N` dequantizes blocks of N weights (dequantize_row_q4_K) to f32. Built against the
 * peer's library at run time; never part of kiln. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void dequantize_row_q4_K(const void *x, float *y, int64_t k);

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: q4k_ref q|d IN OUT N\n"); return 2; }
  const long n = atol(argv[4]);
  const size_t blocks = (size_t)n / 256, qbytes = blocks * 144, fbytes = (size_t)n * 4;
  const int quant = argv[1][0] == 'q';
  const size_t inBytes = quant ? fbytes : qbytes, outBytes = quant ? qbytes : fbytes;
  void *in = malloc(inBytes), *out = malloc(outBytes);
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(in, 1, inBytes, f) != inBytes) { fprintf(stderr, "q4k_ref: cannot read %zu bytes from %s\n", inBytes, argv[2]); return 1; }
  fclose(f);
  if (quant) quantize_row_q4_K_ref((const float *)in, out, n);
  else dequantize_row_q4_K(in, (float *)out, n);
  f = fopen(argv[3], "wb");
  if (!f || fwrite(out, 1, outBytes, f) != outBytes) { fprintf(stderr, "q4k_ref: cannot write %s\n", argv[3]); return 1; }
  fclose(f);
  return 0;
}
