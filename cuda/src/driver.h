// driver.h: the driver API entry points the addon uses, declared from their documented signatures (no
// cuda.h at build time is needed), as one X-macro list so loading and declaring cannot drift apart.
// NOTE: the _v2 names are the 64-bit ABI the unsuffixed macros of cuda.h resolve to.
#pragma once
#include <cstring>
#include "napi_util.h"

typedef unsigned long long CUdeviceptr_t;

#define KC_DRIVER_FNS \
  X(int, cuGetErrorName, (int, const char**)) \
  X(int, cuGetErrorString, (int, const char**)) \
  X(int, cuInit, (unsigned)) \
  X(int, cuDriverGetVersion, (int*)) \
  X(int, cuDeviceGetCount, (int*)) \
  X(int, cuDeviceGet, (int*, int)) \
  X(int, cuDeviceGetName, (char*, int, int)) \
  X(int, cuDeviceTotalMem_v2, (size_t*, int)) \
  X(int, cuDeviceGetAttribute, (int*, int, int)) \
  X(int, cuDevicePrimaryCtxRetain, (void**, int)) \
  X(int, cuCtxSetCurrent, (void*)) \
  X(int, cuStreamCreate, (void**, unsigned)) \
  X(int, cuStreamSynchronize, (void*)) \
  X(int, cuStreamQuery, (void*)) \
  X(int, cuStreamDestroy_v2, (void*)) \
  X(int, cuMemAlloc_v2, (CUdeviceptr_t*, size_t)) \
  X(int, cuMemFree_v2, (CUdeviceptr_t)) \
  X(int, cuMemAllocHost_v2, (void**, size_t)) \
  X(int, cuMemFreeHost, (void*)) \
  X(int, cuMemcpyHtoD_v2, (CUdeviceptr_t, const void*, size_t)) \
  X(int, cuMemcpyDtoH_v2, (void*, CUdeviceptr_t, size_t)) \
  X(int, cuMemcpyHtoDAsync_v2, (CUdeviceptr_t, const void*, size_t, void*)) \
  X(int, cuMemcpyDtoHAsync_v2, (void*, CUdeviceptr_t, size_t, void*)) \
  X(int, cuMemcpyDtoDAsync_v2, (CUdeviceptr_t, CUdeviceptr_t, size_t, void*)) \
  X(int, cuMemsetD8Async, (CUdeviceptr_t, unsigned char, size_t, void*)) \
  X(int, cuEventCreate, (void**, unsigned)) \
  X(int, cuEventRecord, (void*, void*)) \
  X(int, cuEventSynchronize, (void*)) \
  X(int, cuEventElapsedTime, (float*, void*, void*)) \
  X(int, cuEventDestroy_v2, (void*)) \
  X(int, cuModuleLoadData, (void**, const void*)) \
  X(int, cuModuleGetFunction, (void**, void*, const char*)) \
  X(int, cuModuleUnload, (void*)) \
  X(int, cuFuncSetAttribute, (void*, int, int)) \
  X(int, cuLaunchKernel, (void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**)) \
  X(int, cuStreamBeginCapture_v2, (void*, int)) \
  X(int, cuStreamEndCapture, (void*, void**)) \
  X(int, cuGraphInstantiateWithFlags, (void**, void*, unsigned long long)) \
  X(int, cuGraphLaunch, (void*, void*)) \
  X(int, cuGraphExecDestroy, (void*)) \
  X(int, cuGraphDestroy, (void*))

namespace kc {

struct Driver {
  void* lib = nullptr;      // set once every entry point resolved and cuInit succeeded
  std::string loadError;    // why the last loadDriver failed, repeated by every later call
#define X(ret, name, params) ret(*name) params = nullptr;
  KC_DRIVER_FNS
#undef X
};

extern Driver drv;
std::string cuError(const char* call, int rc);
extern const Export driverExports[];

}  // namespace kc
