// nvrtc.cc: run-time compilation of CUDA C (the kernels render_cuda.ts makes, and the routines in cuda/)
// with NVRTC, dlopen'd. compile() returns a cubin when the options name a real architecture
// (-arch=sm_90a) and PTX otherwise; a compile error throws with NVRTC's log, which quotes the
// offending source line, and the program's name.
#include "kiln_cuda_exports.h"

namespace kc {

#define KC_NVRTC_FNS \
  X(const char*, nvrtcGetErrorString, (int)) \
  X(int, nvrtcVersion, (int*, int*)) \
  X(int, nvrtcCreateProgram, (void**, const char*, const char*, int, const char* const*, const char* const*)) \
  X(int, nvrtcCompileProgram, (void*, int, const char* const*)) \
  X(int, nvrtcGetPTXSize, (void*, size_t*)) \
  X(int, nvrtcGetPTX, (void*, char*)) \
  X(int, nvrtcGetCUBINSize, (void*, size_t*)) \
  X(int, nvrtcGetCUBIN, (void*, char*)) \
  X(int, nvrtcGetProgramLogSize, (void*, size_t*)) \
  X(int, nvrtcGetProgramLog, (void*, char*)) \
  X(int, nvrtcDestroyProgram, (void**))

static struct {
  void* lib = nullptr;
  std::string loadError;
#define X(ret, name, params) ret(*name) params = nullptr;
  KC_NVRTC_FNS
#undef X
} rt;

static std::string nvrtcError(const char* call, int rc) {
  const char* s = rt.nvrtcGetErrorString ? rt.nvrtcGetErrorString(rc) : nullptr;
  return std::string(call) + " failed: " + (s ? s : "NVRTC error " + std::to_string(rc));
}

// loadNvrtc(path): { major, minor }.
static napi_value LoadNvrtc(napi_env env, napi_callback_info info) {
  Args a(env, info, "loadNvrtc");
  std::string path = a.str(0);
  if (!a.ok) return nullptr;
  if (!rt.lib) {
    std::string why;
    void* lib = open(path, &why);
    if (!lib) { rt.loadError = "NVRTC not found: " + why; return throwError(env, "kiln_cuda.loadNvrtc: " + rt.loadError); }
#define X(ret, name, params) sym(lib, rt.name, #name); \
    if (!rt.name) { rt.loadError = path + " lacks " #name; return throwError(env, "kiln_cuda.loadNvrtc: " + rt.loadError); }
    KC_NVRTC_FNS
#undef X
    rt.lib = lib;
  }
  int major = 0, minor = 0;
  rt.nvrtcVersion(&major, &minor);
  napi_value r; napi_create_object(env, &r);
  set(env, r, "major", num(env, major));
  set(env, r, "minor", num(env, minor));
  return r;
}

// compile(source, name, options): { image: Buffer, kind: "cubin" | "ptx", log }.
static napi_value Compile(napi_env env, napi_callback_info info) {
  Args a(env, info, "compile");
  std::string src = a.str(0), name = a.str(1);
  std::vector<std::string> opts = a.strings(2);
  if (!a.ok) return nullptr;
  if (!rt.lib) return throwError(env, "kiln_cuda.compile: NVRTC is not loaded (" + (rt.loadError.empty() ? "call loadNvrtc(path) first" : rt.loadError) + ")");
  void* prog = nullptr;
  int rc = rt.nvrtcCreateProgram(&prog, src.c_str(), name.c_str(), 0, nullptr, nullptr);
  if (rc != 0) return throwError(env, nvrtcError("nvrtcCreateProgram", rc) + " for " + name);
  std::vector<const char*> argv;
  bool cubin = false;
  for (auto& o : opts) { argv.push_back(o.c_str()); if (o.rfind("-arch=sm_", 0) == 0 || o.rfind("--gpu-architecture=sm_", 0) == 0) cubin = true; }
  int crc = rt.nvrtcCompileProgram(prog, (int)argv.size(), argv.data());
  size_t logSize = 0;
  std::string log;
  if (rt.nvrtcGetProgramLogSize(prog, &logSize) == 0 && logSize > 1) {
    log.resize(logSize);
    rt.nvrtcGetProgramLog(prog, log.data());
    log.resize(logSize - 1);
  }
  if (crc != 0) {
    rt.nvrtcDestroyProgram(&prog);
    return throwError(env, nvrtcError("nvrtcCompileProgram", crc) + " for " + name + ":\n" + log);
  }
  size_t n = 0;
  rc = cubin ? rt.nvrtcGetCUBINSize(prog, &n) : rt.nvrtcGetPTXSize(prog, &n);
  std::string image(n, '\0');
  if (rc == 0) rc = cubin ? rt.nvrtcGetCUBIN(prog, image.data()) : rt.nvrtcGetPTX(prog, image.data());
  rt.nvrtcDestroyProgram(&prog);
  if (rc != 0) return throwError(env, nvrtcError(cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX", rc) + " for " + name);
  napi_value r, buf; void* unused;
  napi_create_object(env, &r);
  napi_create_buffer_copy(env, image.size(), image.data(), &unused, &buf);
  set(env, r, "image", buf);
  set(env, r, "kind", str(env, cubin ? "cubin" : "ptx"));
  set(env, r, "log", str(env, log));
  return r;
}

const Export nvrtcExports[] = {{"loadNvrtc", LoadNvrtc}, {"compile", Compile}, {nullptr, nullptr}};

}  // namespace kc
