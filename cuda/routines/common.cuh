// common.cuh: what every routine shares: loads and stores of f32/f16/bf16 as float (the routines
// compute in f32 and round on store, as the renderer's kernels do), warp and block reductions, and the
// macro that instantiates an `extern "C"` entry per dtype (names end in _f32, _f16, _bf16), so NVRTC's
// cuModuleGetFunction and nvcc's cubins find them by plain names.
#pragma once
#ifdef KILN_HOST_SHIM
// Compiled as host C++ by test/unit/cuda_routines.test.ts (test/helpers/cuda_routine_host.h): f32 only,
// and only the routines that need no block sync or warp shuffles use this path.
namespace kiln {
inline float ld(const float* p, long long i) { return p[i]; }
inline void st(float* p, long long i, float v) { p[i] = v; }
}  // namespace kiln
#define KILN_FLOAT_ENTRIES(M) M(f32, float)
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace kiln {

__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, long long i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, long long i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, long long i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, long long i, float v) { p[i] = __float2bfloat16_rn(v); }

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
// `sh` holds 32 floats. NOTE: the order is fixed (lanes, then warps), so sums reproduce run to run.
__device__ __forceinline__ float blockSum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warpSum(v);
  __syncthreads();  // sh may still be read by a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < warps ? sh[lane] : 0.f;
  return warpSum(v);
}
__device__ __forceinline__ float blockMax(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < warps ? sh[lane] : -INFINITY;
  return warpMax(v);
}

}  // namespace kiln

// KILN_FLOAT_ENTRIES(M): M(suffix, type) for each storage dtype a routine takes.
#define KILN_FLOAT_ENTRIES(M) M(f32, float) M(f16, __half) M(bf16, __nv_bfloat16)
#endif  // KILN_HOST_SHIM
