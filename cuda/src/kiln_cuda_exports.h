// kiln_cuda_exports.h: each part of the addon's table of JS functions (kiln_cuda.cc registers them all).
#pragma once
#include "napi_util.h"
namespace kc {
extern const Export driverExports[];
extern const Export nvrtcExports[];
extern const Export cublasLtExports[];
extern const Export ncclExports[];
}  // namespace kc
