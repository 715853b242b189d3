// cuda_host_shim.h: just enough of CUDA for rendered kernels (src/backends/cuda/render_cuda.ts) to compile
// as host C++ and run on the cpu, so test/unit/cuda_render.test.ts can check their numbers without a GPU.
// A kernel becomes a host function; blockIdx and threadIdx are thread-local globals the runner
// (cuda_host_main.cpp) sets in loops. __syncthreads is a barrier across the threads of one block, which
// the runner then runs as fibers; __shared__ is `static` (one copy, shared by the block's threads,
// correct because the runner runs one block at a time).
// NOTE: what this cannot show: warp-level behaviour, memory ordering without barriers, float contraction
// and the device's own math library (CUDA's expf is not glibc's; both are within a few ulp).
#pragma once
#include <math.h>
#include <string.h>

struct kiln_dim3 { unsigned x, y, z; };
extern thread_local kiln_dim3 threadIdx, blockIdx;
extern kiln_dim3 blockDim, gridDim;
void kiln_shim_syncthreads();

#define KILN_HOST_SHIM 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __syncthreads() kiln_shim_syncthreads()

/** How the runner calls a kernel: its buffers as untyped pointers and their sizes in bytes, in slot order. */
typedef void (*kiln_shim_call)(void** bufs, const unsigned* nbytes);
/** Each translation unit registers its kernels by entry name at static initialisation. */
void kiln_shim_register(const char* name, kiln_shim_call call);
struct kiln_shim_registrar {
  kiln_shim_registrar(const char* name, kiln_shim_call call) { kiln_shim_register(name, call); }
};
