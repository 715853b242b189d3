// kiln_cuda.cc: the native addon's first piece: find and open the CUDA libraries at run time (dlopen),
// so kiln installs and loads on machines without them and says which one is missing. Plain N-API
// (node_api.h ships with Node: no extra package, and the same ABI-stable interface node-addon-api wraps).
// It owns loading: which folders to search and what each piece is called is src/backends/cuda/probe.ts's.
// The runtime is in files of their own beside it: driver.cc, nvrtc.cc, cublaslt.cc, nccl.cc.
#include <dlfcn.h>
#include <node_api.h>
#include <string>
#include <vector>
#include "kiln_cuda_exports.h"

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, nullptr, "kiln_cuda: N-API call failed: " #call); return nullptr; } } while (0)

static napi_value str(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}

static bool getString(napi_env env, napi_value v, std::string* out) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok) return false;
  out->resize(n);
  return napi_get_value_string_utf8(env, v, out->data(), n + 1, &n) == napi_ok;
}

// openFirst(candidates: string[]): { path } for the first that dlopen accepts (kept open for the
// process's life), else { errors: string[] }, dlerror()'s text for each.
static napi_value OpenFirst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  uint32_t n = 0;
  if (argc < 1 || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, nullptr, "kiln_cuda.openFirst: expected an array of library paths or names");
    return nullptr;
  }
  napi_value result, errors;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_array(env, &errors));
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    std::string path;
    CHECK(napi_get_element(env, argv[0], i, &item));
    if (!getString(env, item, &path)) {
      napi_throw_type_error(env, nullptr, "kiln_cuda.openFirst: a candidate is not a string");
      return nullptr;
    }
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      CHECK(napi_set_named_property(env, result, "path", str(env, path)));
      return result;
    }
    const char* why = dlerror();
    CHECK(napi_set_element(env, errors, i, str(env, why ? why : path + ": dlopen failed")));
  }
  CHECK(napi_set_named_property(env, result, "errors", errors));
  return result;
}

typedef int (*cuInit_t)(unsigned);
typedef int (*cuDriverGetVersion_t)(int*);
typedef int (*cuDeviceGetCount_t)(int*);
typedef int (*cuGetErrorName_t)(int, const char**);
typedef int (*cuGetErrorString_t)(int, const char**);

// driverInfo(path): { version, devices } from the driver API at `path`, or { error } naming the call and
// CUDA's own error name and string (no driver, no device, ...). Never aborts the process.
static napi_value DriverInfo(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  std::string path;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 1 || !getString(env, argv[0], &path)) {
    napi_throw_type_error(env, nullptr, "kiln_cuda.driverInfo: expected the driver library's path");
    return nullptr;
  }
  napi_value result;
  CHECK(napi_create_object(env, &result));
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    CHECK(napi_set_named_property(env, result, "error", str(env, why ? why : "dlopen failed")));
    return result;
  }
  auto init = (cuInit_t)dlsym(lib, "cuInit");
  auto version = (cuDriverGetVersion_t)dlsym(lib, "cuDriverGetVersion");
  auto count = (cuDeviceGetCount_t)dlsym(lib, "cuDeviceGetCount");
  auto errName = (cuGetErrorName_t)dlsym(lib, "cuGetErrorName");
  auto errString = (cuGetErrorString_t)dlsym(lib, "cuGetErrorString");
  if (!init || !version || !count) {
    CHECK(napi_set_named_property(env, result, "error", str(env, path + " lacks cuInit, cuDriverGetVersion or cuDeviceGetCount")));
    return result;
  }
  auto fail = [&](const char* call, int code) {
    const char* name = nullptr;
    const char* text = nullptr;
    if (errName) errName(code, &name);
    if (errString) errString(code, &text);
    std::string msg = std::string(call) + " failed: " + (name ? name : "CUDA error " + std::to_string(code)) + (text ? std::string(" (") + text + ")" : "");
    napi_set_named_property(env, result, "error", str(env, msg));
    return result;
  };
  int v = 0, devices = 0, rc;
  if ((rc = version(&v)) != 0) return fail("cuDriverGetVersion", rc);
  if ((rc = init(0)) != 0) return fail("cuInit", rc);
  if ((rc = count(&devices)) != 0) return fail("cuDeviceGetCount", rc);
  napi_value nv, nd;
  CHECK(napi_create_int32(env, v, &nv));
  CHECK(napi_create_int32(env, devices, &nd));
  CHECK(napi_set_named_property(env, result, "version", nv));
  CHECK(napi_set_named_property(env, result, "devices", nd));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"openFirst", nullptr, OpenFirst, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"driverInfo", nullptr, DriverInfo, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  for (const kc::Export* table : {kc::driverExports, kc::nvrtcExports, kc::cublasLtExports, kc::ncclExports}) {
    for (const kc::Export* e = table; e->name; e++) {
      napi_value fn;
      CHECK(napi_create_function(env, e->name, NAPI_AUTO_LENGTH, e->fn, nullptr, &fn));
      CHECK(napi_set_named_property(env, exports, e->name, fn));
    }
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
