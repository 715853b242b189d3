// driver.cc: the CUDA driver API, dlopen'd (no cuda.h needed at run time, no libcuda at link time):
// devices and properties, the primary context, streams, device and pinned host memory, copies, events,
// modules (PTX or cubin) and launches, and CUDA graphs by stream capture. Every call is checked: a
// failure throws a JS Error "cuXxx failed: CUDA_ERROR_NAME (CUDA's own string)", never an abort.
// The entry points are declared here from the driver API's documented signatures (CUresult is an int,
// handles are pointers, CUdeviceptr is 64 bits).
#include "driver.h"

namespace kc {

Driver drv;

std::string cuError(const char* call, int rc) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (drv.cuGetErrorName) drv.cuGetErrorName(rc, &name);
  if (drv.cuGetErrorString) drv.cuGetErrorString(rc, &text);
  return std::string(call) + " failed: " + (name ? name : "CUDA error " + std::to_string(rc)) + (text ? std::string(" (") + text + ")" : "");
}

// Throws unless the driver is loaded; `what` names the JS function.
static bool ready(napi_env env, const char* what) {
  if (drv.lib) return true;
  throwError(env, std::string("kiln_cuda.") + what + ": the CUDA driver is not loaded (" + (drv.loadError.empty() ? "call loadDriver(path) first" : drv.loadError) + ")");
  return false;
}

#define CU(fn, ...) do { int rc_ = drv.fn(__VA_ARGS__); if (rc_ != 0) return throwError(env, cuError(#fn, rc_)); } while (0)
#define BEGIN(name, nargs_unused) Args a(env, info, name); if (!a.ok || !ready(env, name)) return nullptr;
#define ARGS_OK if (!a.ok) return nullptr;

// loadDriver(path): dlopen the driver, resolve its entry points and cuInit; { version, devices }.
static napi_value LoadDriver(napi_env env, napi_callback_info info) {
  Args a(env, info, "loadDriver");
  std::string path = a.str(0);
  ARGS_OK;
  if (!drv.lib) {
    std::string why;
    void* lib = open(path, &why);
    if (!lib) { drv.loadError = "no NVIDIA driver: " + why; return throwError(env, "kiln_cuda.loadDriver: " + drv.loadError); }
#define X(ret, name, params) sym(lib, drv.name, #name); \
    if (!drv.name) { drv.loadError = path + " lacks " #name " (driver too old?)"; return throwError(env, "kiln_cuda.loadDriver: " + drv.loadError); }
    KC_DRIVER_FNS
#undef X
    int rc = drv.cuInit(0);
    if (rc != 0) { drv.loadError = cuError("cuInit", rc); return throwError(env, "kiln_cuda.loadDriver: " + drv.loadError); }
    drv.lib = lib;
  }
  int version = 0, devices = 0;
  CU(cuDriverGetVersion, &version);
  CU(cuDeviceGetCount, &devices);
  napi_value r; napi_create_object(env, &r);
  set(env, r, "version", num(env, version));
  set(env, r, "devices", num(env, devices));
  return r;
}

// deviceProperties(ordinal): what the backend and the benchmarks need to know about a GPU.
static napi_value DeviceProperties(napi_env env, napi_callback_info info) {
  BEGIN("deviceProperties", 1);
  int ordinal = a.i32(0); ARGS_OK;
  int dev = 0; char name[256] = {0}; size_t mem = 0;
  CU(cuDeviceGet, &dev, ordinal);
  CU(cuDeviceGetName, name, sizeof(name) - 1, dev);
  CU(cuDeviceTotalMem_v2, &mem, dev);
  napi_value r; napi_create_object(env, &r);
  set(env, r, "name", str(env, name));
  set(env, r, "totalMemory", num(env, (double)mem));
  // CUdevice_attribute numbers (cuda.h): documented and stable across CUDA versions.
  static const std::pair<const char*, int> attrs[] = {
    {"major", 75}, {"minor", 76}, {"multiprocessors", 16}, {"maxThreadsPerBlock", 1},
    {"sharedMemoryPerBlockOptin", 97}, {"clockRateKHz", 13}, {"memoryClockRateKHz", 36},
    {"memoryBusWidth", 37}, {"l2CacheBytes", 38}, {"warpSize", 10},
  };
  for (auto& [k, attr] : attrs) { int v = 0; CU(cuDeviceGetAttribute, &v, attr, dev); set(env, r, k, num(env, v)); }
  return r;
}

// context(ordinal): retain the device's primary context and make it current on this thread (the one
// context runtime-API libraries such as cuBLASLt and NCCL also use).
static napi_value Context(napi_env env, napi_callback_info info) {
  BEGIN("context", 1);
  int ordinal = a.i32(0); ARGS_OK;
  int dev = 0; void* ctx = nullptr;
  CU(cuDeviceGet, &dev, ordinal);
  CU(cuDevicePrimaryCtxRetain, &ctx, dev);
  CU(cuCtxSetCurrent, ctx);
  return big(env, (uintptr_t)ctx);
}

static napi_value StreamCreate(napi_env env, napi_callback_info info) {
  BEGIN("streamCreate", 0);
  void* s = nullptr;
  CU(cuStreamCreate, &s, 1 /* CU_STREAM_NON_BLOCKING */);
  return big(env, (uintptr_t)s);
}
static napi_value StreamSynchronize(napi_env env, napi_callback_info info) {
  BEGIN("streamSynchronize", 1);
  void* s = a.ptr(0); ARGS_OK;
  CU(cuStreamSynchronize, s);
  return undef(env);
}
// streamQuery(stream): true once all work queued on it is done, false while some is still running
// (CUDA_ERROR_NOT_READY), so a caller can wait without blocking Node's event loop (nccl_comm.ts polls it:
// a collective whose peer never comes must stay abortable, which a blocking synchronize is not).
static napi_value StreamQuery(napi_env env, napi_callback_info info) {
  BEGIN("streamQuery", 1);
  void* s = a.ptr(0); ARGS_OK;
  int rc = drv.cuStreamQuery(s);
  if (rc == 600 /* CUDA_ERROR_NOT_READY */) { napi_value r; napi_get_boolean(env, false, &r); return r; }
  if (rc != 0) return throwError(env, cuError("cuStreamQuery", rc));
  napi_value r; napi_get_boolean(env, true, &r); return r;
}
static napi_value StreamDestroy(napi_env env, napi_callback_info info) {
  BEGIN("streamDestroy", 1);
  void* s = a.ptr(0); ARGS_OK;
  CU(cuStreamDestroy_v2, s);
  return undef(env);
}

static napi_value MemAlloc(napi_env env, napi_callback_info info) {
  BEGIN("memAlloc", 1);
  uint64_t n = a.u64(0); ARGS_OK;
  CUdeviceptr_t p = 0;
  CU(cuMemAlloc_v2, &p, n == 0 ? 1 : n);  // zero bytes is an error in CUDA; kiln allows empty buffers
  return big(env, p);
}
static napi_value MemFree(napi_env env, napi_callback_info info) {
  BEGIN("memFree", 1);
  uint64_t p = a.u64(0); ARGS_OK;
  CU(cuMemFree_v2, p);
  return undef(env);
}

static void freeHost(napi_env, void* data, void*) { if (drv.cuMemFreeHost) drv.cuMemFreeHost(data); }

// hostAlloc(nbytes): pinned (page-locked) host memory as an ArrayBuffer, freed when it is collected.
// Copies from it run asynchronously and at full PCIe speed; pageable memory is staged by the driver.
static napi_value HostAlloc(napi_env env, napi_callback_info info) {
  BEGIN("hostAlloc", 1);
  uint64_t n = a.u64(0); ARGS_OK;
  void* p = nullptr;
  CU(cuMemAllocHost_v2, &p, n == 0 ? 1 : n);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, n, freeHost, nullptr, &ab) != napi_ok) {
    drv.cuMemFreeHost(p);
    return throwError(env, "kiln_cuda.hostAlloc: this Node does not allow external ArrayBuffers");
  }
  return ab;
}

// copyHtoD(dst, bytes, stream): async on the stream; the bytes must stay alive until it is synchronized
// (pinned memory from hostAlloc), or pass stream 0n for a synchronous copy from pageable memory.
static napi_value CopyHtoD(napi_env env, napi_callback_info info) {
  BEGIN("copyHtoD", 3);
  uint64_t dst = a.u64(0); auto [src, n] = a.bytes(1); void* s = a.ptr(2); ARGS_OK;
  if (n == 0) return undef(env);
  if (s) { CU(cuMemcpyHtoDAsync_v2, dst, src, n, s); } else { CU(cuMemcpyHtoD_v2, dst, src, n); }
  return undef(env);
}
static napi_value CopyDtoH(napi_env env, napi_callback_info info) {
  BEGIN("copyDtoH", 3);
  auto [dst, n] = a.bytes(0); uint64_t src = a.u64(1); void* s = a.ptr(2); ARGS_OK;
  if (n == 0) return undef(env);
  if (s) { CU(cuMemcpyDtoHAsync_v2, dst, src, n, s); } else { CU(cuMemcpyDtoH_v2, dst, src, n); }
  return undef(env);
}
static napi_value CopyDtoD(napi_env env, napi_callback_info info) {
  BEGIN("copyDtoD", 4);
  uint64_t dst = a.u64(0), src = a.u64(1), n = a.u64(2); void* s = a.ptr(3); ARGS_OK;
  if (n > 0) CU(cuMemcpyDtoDAsync_v2, dst, src, n, s);
  return undef(env);
}
static napi_value Memset(napi_env env, napi_callback_info info) {
  BEGIN("memset", 4);
  uint64_t dst = a.u64(0); int v = a.i32(1); uint64_t n = a.u64(2); void* s = a.ptr(3); ARGS_OK;
  if (n > 0) CU(cuMemsetD8Async, dst, (unsigned char)v, n, s);
  return undef(env);
}

static napi_value EventCreate(napi_env env, napi_callback_info info) {
  BEGIN("eventCreate", 0);
  void* e = nullptr;
  CU(cuEventCreate, &e, 0 /* CU_EVENT_DEFAULT: timed */);
  return big(env, (uintptr_t)e);
}
static napi_value EventRecord(napi_env env, napi_callback_info info) {
  BEGIN("eventRecord", 2);
  void* e = a.ptr(0); void* s = a.ptr(1); ARGS_OK;
  CU(cuEventRecord, e, s);
  return undef(env);
}
// eventElapsed(start, end): milliseconds between two recorded events, after waiting for the second.
static napi_value EventElapsed(napi_env env, napi_callback_info info) {
  BEGIN("eventElapsed", 2);
  void* e0 = a.ptr(0); void* e1 = a.ptr(1); ARGS_OK;
  float ms = 0;
  CU(cuEventSynchronize, e1);
  CU(cuEventElapsedTime, &ms, e0, e1);
  return num(env, ms);
}
static napi_value EventDestroy(napi_env env, napi_callback_info info) {
  BEGIN("eventDestroy", 1);
  void* e = a.ptr(0); ARGS_OK;
  CU(cuEventDestroy_v2, e);
  return undef(env);
}

// moduleLoad(image): a PTX (NUL-terminated text) or cubin image; the driver JITs PTX for this GPU.
static napi_value ModuleLoad(napi_env env, napi_callback_info info) {
  BEGIN("moduleLoad", 1);
  auto [p, n] = a.bytes(0); ARGS_OK;
  std::string copy((const char*)p, n);  // PTX must end in NUL; a cubin is unaffected by one more byte
  void* m = nullptr;
  CU(cuModuleLoadData, &m, copy.c_str());
  return big(env, (uintptr_t)m);
}
static napi_value ModuleFunction(napi_env env, napi_callback_info info) {
  BEGIN("moduleFunction", 2);
  void* m = a.ptr(0); std::string name = a.str(1); ARGS_OK;
  void* f = nullptr;
  int rc = drv.cuModuleGetFunction(&f, m, name.c_str());
  if (rc != 0) return throwError(env, cuError("cuModuleGetFunction", rc) + ": no kernel named " + name);
  return big(env, (uintptr_t)f);
}
static napi_value ModuleUnload(napi_env env, napi_callback_info info) {
  BEGIN("moduleUnload", 1);
  void* m = a.ptr(0); ARGS_OK;
  CU(cuModuleUnload, m);
  return undef(env);
}
// functionSetSharedBytes(fn, bytes): allow more than 48 KiB of dynamic shared memory (Hopper: 227 KiB).
static napi_value FunctionSetSharedBytes(napi_env env, napi_callback_info info) {
  BEGIN("functionSetSharedBytes", 2);
  void* f = a.ptr(0); int bytes = a.i32(1); ARGS_OK;
  CU(cuFuncSetAttribute, f, 8 /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES */, bytes);
  return undef(env);
}

// launch(fn, [gx,gy,gz], [bx,by,bz], sharedBytes, stream, args, kinds): kinds has one letter per
// argument: p (device pointer, BigInt), i (i32), u (u32), f (f32), d (f64), q (u64).
static napi_value Launch(napi_env env, napi_callback_info info) {
  BEGIN("launch", 7);
  void* f = a.ptr(0); int sh = a.i32(3); void* s = a.ptr(4); std::string kinds = a.str(6); ARGS_OK;
  unsigned g[3], b[3];
  for (int d = 0; d < 3; d++) {
    napi_value gv, bv; double x, y;
    if (napi_get_element(env, a.at(1), d, &gv) != napi_ok || napi_get_value_double(env, gv, &x) != napi_ok) { a.fail(1, "[gridX, gridY, gridZ]"); return nullptr; }
    if (napi_get_element(env, a.at(2), d, &bv) != napi_ok || napi_get_value_double(env, bv, &y) != napi_ok) { a.fail(2, "[blockX, blockY, blockZ]"); return nullptr; }
    g[d] = (unsigned)x; b[d] = (unsigned)y;
  }
  uint32_t n = 0;
  if (napi_get_array_length(env, a.at(5), &n) != napi_ok || n != kinds.size()) { a.fail(5, "an array with one value per letter of kinds"); return nullptr; }
  std::vector<uint64_t> store(n);
  std::vector<void*> params(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value v; napi_get_element(env, a.at(5), k, &v);
    double d = 0; uint64_t u = 0; bool lossless;
    char c = kinds[k];
    if (c == 'p' || c == 'q') {
      if (napi_get_value_bigint_uint64(env, v, &u, &lossless) != napi_ok) { napi_get_value_double(env, v, &d); u = (uint64_t)d; }
      store[k] = u;
    } else if (napi_get_value_double(env, v, &d) != napi_ok) {
      return throwError(env, "kiln_cuda.launch: argument " + std::to_string(k) + " (kind " + c + ") is not a number");
    } else if (c == 'i') { int32_t x = (int32_t)d; memcpy(&store[k], &x, 4);
    } else if (c == 'u') { uint32_t x = (uint32_t)d; memcpy(&store[k], &x, 4);
    } else if (c == 'f') { float x = (float)d; memcpy(&store[k], &x, 4);
    } else if (c == 'd') { memcpy(&store[k], &d, 8);
    } else return throwError(env, std::string("kiln_cuda.launch: unknown argument kind '") + c + "' (p, q, i, u, f, d)");
    params[k] = &store[k];
  }
  CU(cuLaunchKernel, f, g[0], g[1], g[2], b[0], b[1], b[2], (unsigned)sh, s, params.data(), nullptr);
  return undef(env);
}

// Graphs: captureBegin(stream) ... launches ... captureEnd(stream) -> exec; graphLaunch(exec, stream).
// Thread-local capture mode: other threads' CUDA calls (NCCL's proxy) do not invalidate the capture.
static napi_value CaptureBegin(napi_env env, napi_callback_info info) {
  BEGIN("captureBegin", 1);
  void* s = a.ptr(0); ARGS_OK;
  CU(cuStreamBeginCapture_v2, s, 1 /* CU_STREAM_CAPTURE_MODE_THREAD_LOCAL */);
  return undef(env);
}
static napi_value CaptureEnd(napi_env env, napi_callback_info info) {
  BEGIN("captureEnd", 1);
  void* s = a.ptr(0); ARGS_OK;
  void* g = nullptr; void* exec = nullptr;
  CU(cuStreamEndCapture, s, &g);
  int rc = drv.cuGraphInstantiateWithFlags(&exec, g, 0);
  drv.cuGraphDestroy(g);  // the executable graph keeps what it needs
  if (rc != 0) return throwError(env, cuError("cuGraphInstantiateWithFlags", rc));
  return big(env, (uintptr_t)exec);
}
static napi_value GraphLaunch(napi_env env, napi_callback_info info) {
  BEGIN("graphLaunch", 2);
  void* exec = a.ptr(0); void* s = a.ptr(1); ARGS_OK;
  CU(cuGraphLaunch, exec, s);
  return undef(env);
}
static napi_value GraphDestroy(napi_env env, napi_callback_info info) {
  BEGIN("graphDestroy", 1);
  void* exec = a.ptr(0); ARGS_OK;
  CU(cuGraphExecDestroy, exec);
  return undef(env);
}

const Export driverExports[] = {
  {"loadDriver", LoadDriver}, {"deviceProperties", DeviceProperties}, {"context", Context},
  {"streamCreate", StreamCreate}, {"streamSynchronize", StreamSynchronize}, {"streamQuery", StreamQuery}, {"streamDestroy", StreamDestroy},
  {"memAlloc", MemAlloc}, {"memFree", MemFree}, {"hostAlloc", HostAlloc},
  {"copyHtoD", CopyHtoD}, {"copyDtoH", CopyDtoH}, {"copyDtoD", CopyDtoD}, {"memset", Memset},
  {"eventCreate", EventCreate}, {"eventRecord", EventRecord}, {"eventElapsed", EventElapsed}, {"eventDestroy", EventDestroy},
  {"moduleLoad", ModuleLoad}, {"moduleFunction", ModuleFunction}, {"moduleUnload", ModuleUnload},
  {"functionSetSharedBytes", FunctionSetSharedBytes}, {"launch", Launch},
  {"captureBegin", CaptureBegin}, {"captureEnd", CaptureEnd}, {"graphLaunch", GraphLaunch}, {"graphDestroy", GraphDestroy},
  {nullptr, nullptr},
};

}  // namespace kc
