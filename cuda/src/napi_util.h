// napi_util.h: the few N-API helpers every part of the addon shares: argument parsing that throws a
// TypeError naming the function and the argument, handles and device pointers as BigInt (plain data
// at the JS boundary, 64 bits wide), and the one way a failed library call becomes a JS error.
// NOTE: a handle is an address; the JS side (src/backends/cuda/runtime.ts) owns its lifetime. A stale
// handle is the caller's bug, as in CUDA itself: the addon cannot tell it from a live one.
#pragma once
#include <dlfcn.h>
#include <node_api.h>
#include <cstdint>
#include <string>
#include <vector>

#define NAPI_OK(call) do { if ((call) != napi_ok) { napi_throw_error(env, nullptr, "kiln_cuda: N-API call failed: " #call); return nullptr; } } while (0)

namespace kc {

struct Args {
  napi_env env;
  const char* fn;
  size_t argc = 12;
  napi_value argv[12];
  bool ok = true;
  Args(napi_env e, napi_callback_info info, const char* name) : env(e), fn(name) {
    if (napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr) != napi_ok) fail(0, "arguments");
  }
  // The first failure throws; later ones are ignored (ok stays false and the caller returns nullptr).
  void fail(size_t i, const char* what) {
    if (!ok) return;
    ok = false;
    std::string m = std::string("kiln_cuda.") + fn + ": argument " + std::to_string(i) + " must be " + what;
    napi_throw_type_error(env, nullptr, m.c_str());
  }
  napi_value at(size_t i) {
    if (i >= argc) { napi_value u; napi_get_undefined(env, &u); return u; }
    return argv[i];
  }
  uint64_t u64(size_t i) {  // BigInt, or a safe-integer Number
    uint64_t v = 0; bool lossless = true; double d;
    if (napi_get_value_bigint_uint64(env, at(i), &v, &lossless) == napi_ok) return v;
    if (napi_get_value_double(env, at(i), &d) == napi_ok && d >= 0 && d <= 9007199254740991.0 && d == (double)(uint64_t)d) return (uint64_t)d;
    fail(i, "a BigInt handle or a non-negative integer");
    return 0;
  }
  void* ptr(size_t i) { return (void*)(uintptr_t)u64(i); }
  int64_t i64(size_t i) {
    double d;
    if (napi_get_value_double(env, at(i), &d) == napi_ok && d == (double)(int64_t)d) return (int64_t)d;
    fail(i, "an integer");
    return 0;
  }
  int i32(size_t i) { return (int)i64(i); }
  double f64(size_t i) {
    double d = 0;
    if (napi_get_value_double(env, at(i), &d) != napi_ok) fail(i, "a number");
    return d;
  }
  std::string str(size_t i) {
    size_t n = 0; std::string s;
    if (napi_get_value_string_utf8(env, at(i), nullptr, 0, &n) != napi_ok) { fail(i, "a string"); return s; }
    s.resize(n);
    napi_get_value_string_utf8(env, at(i), s.data(), n + 1, &n);
    return s;
  }
  // Bytes of a Buffer, TypedArray or ArrayBuffer (not copied: valid for this call only).
  std::pair<void*, size_t> bytes(size_t i) {
    void* data = nullptr; size_t len = 0; bool is = false;
    napi_value v = at(i);
    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
      napi_typedarray_type t; size_t n; napi_value ab; size_t off;
      napi_get_typedarray_info(env, v, &t, &n, &data, &ab, &off);
      static const size_t sz[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
      return {data, n * sz[t]};
    }
    if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) { napi_get_arraybuffer_info(env, v, &data, &len); return {data, len}; }
    fail(i, "a TypedArray, Buffer or ArrayBuffer");
    return {nullptr, 0};
  }
  std::vector<std::string> strings(size_t i) {
    std::vector<std::string> out; uint32_t n = 0; bool is = false;
    if (napi_is_array(env, at(i), &is) != napi_ok || !is) { fail(i, "an array of strings"); return out; }
    napi_get_array_length(env, at(i), &n);
    for (uint32_t k = 0; k < n; k++) {
      napi_value e; size_t len = 0; std::string s;
      napi_get_element(env, at(i), k, &e);
      if (napi_get_value_string_utf8(env, e, nullptr, 0, &len) != napi_ok) { fail(i, "an array of strings"); return out; }
      s.resize(len);
      napi_get_value_string_utf8(env, e, s.data(), len + 1, &len);
      out.push_back(s);
    }
    return out;
  }
};

inline napi_value big(napi_env env, uint64_t v) { napi_value r; napi_create_bigint_uint64(env, v, &r); return r; }
inline napi_value num(napi_env env, double v) { napi_value r; napi_create_double(env, v, &r); return r; }
inline napi_value str(napi_env env, const std::string& s) { napi_value r; napi_create_string_utf8(env, s.c_str(), s.size(), &r); return r; }
inline napi_value undef(napi_env env) { napi_value r; napi_get_undefined(env, &r); return r; }
inline void set(napi_env env, napi_value obj, const char* k, napi_value v) { napi_set_named_property(env, obj, k, v); }

inline std::nullptr_t throwError(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

// Resolve `name` in an open library; a missing symbol leaves the pointer null and is reported by need().
template <typename F>
inline void sym(void* lib, F& fp, const char* name) { fp = lib ? (F)dlsym(lib, name) : nullptr; }

// Open a library for one piece: the error (dlerror's text) goes into *why.
inline void* open(const std::string& path, std::string* why) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) { const char* e = dlerror(); *why = e ? e : path + ": dlopen failed"; }
  return lib;
}

using Fn = napi_value (*)(napi_env, napi_callback_info);
struct Export { const char* name; Fn fn; };

}  // namespace kc
