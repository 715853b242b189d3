// cuda_routine_host.h: the least of CUDA that lets a block-sync-free routine of cuda/routines/ compile as
// host C++ (f32 entries only, common.cuh's KILN_HOST_SHIM path), so test/unit/cuda_routines.test.ts can run
// it on the cpu against kiln's own cpu backend. A launch is a loop over blocks and threads.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kiln_dim3 { unsigned x, y, z; };
static kiln_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define KILN_HOST_SHIM 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)

/** Runs `body` for every thread of a 1-D grid of `threads` threads in blocks of 256. */
template <typename F>
static void kiln_launch(long long threads, F body) {
  blockDim = {256, 1, 1};
  gridDim = {(unsigned)((threads + 255) / 256), 1, 1};
  for (unsigned b = 0; b < gridDim.x; b++)
    for (unsigned t = 0; t < 256; t++) { blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0}; body(); }
}
