// cublaslt.cc: matmul through cuBLASLt, dlopen'd, entry points and enum values declared here from
// cublasLt.h's documented ABI. cuBLASLt is column-major: a row-major D[M,N] = A[M,K] B[K,N] is the
// column-major D^T = B^T A^T, which src/backends/cuda/ maps (swap the operands, swap m and n).
// fp8 (e4m3/e5m2) needs Hopper or Ada and the "TN" layout (transA = true, transB = false), per-tensor
// scales as device f32 pointers, and fast accumulation on; that is what a linear layer's W[N,K] gives.
#include "driver.h"
#include "kiln_cuda_exports.h"

namespace kc {

#define KC_LT_FNS \
  X(const char*, cublasLtGetStatusString, (int)) \
  X(int, cublasLtCreate, (void**)) \
  X(int, cublasLtMatmulDescCreate, (void**, int, int)) \
  X(int, cublasLtMatmulDescDestroy, (void*)) \
  X(int, cublasLtMatmulDescSetAttribute, (void*, int, const void*, size_t)) \
  X(int, cublasLtMatrixLayoutCreate, (void**, int, uint64_t, uint64_t, int64_t)) \
  X(int, cublasLtMatrixLayoutDestroy, (void*)) \
  X(int, cublasLtMatmulPreferenceCreate, (void**)) \
  X(int, cublasLtMatmulPreferenceDestroy, (void*)) \
  X(int, cublasLtMatmulPreferenceSetAttribute, (void*, int, const void*, size_t)) \
  X(int, cublasLtMatmulAlgoGetHeuristic, (void*, void*, void*, void*, void*, void*, void*, int, void*, int*)) \
  X(int, cublasLtMatmul, (void*, void*, const void*, const void*, void*, const void*, void*, const void*, const void*, void*, void*, void*, const void*, void*, size_t, void*))

static struct {
  void* lib = nullptr;
  void* handle = nullptr;
  std::string loadError;
#define X(ret, name, params) ret(*name) params = nullptr;
  KC_LT_FNS
#undef X
} lt;

// cublasLtMatmulHeuristicResult_t: algo (8 x u64), workspaceSize, state, wavesCount, reserved[4].
struct Heuristic { uint64_t algo[8]; size_t workspaceSize; int state; float waves; int reserved[4]; };

static std::string ltError(const char* call, int rc) {
  const char* s = lt.cublasLtGetStatusString ? lt.cublasLtGetStatusString(rc) : nullptr;
  return std::string(call) + " failed: " + (s ? s : "cuBLAS status " + std::to_string(rc));
}

static napi_value LoadCublasLt(napi_env env, napi_callback_info info) {
  Args a(env, info, "loadCublasLt");
  std::string path = a.str(0);
  if (!a.ok) return nullptr;
  if (!lt.lib) {
    std::string why;
    void* lib = open(path, &why);
    if (!lib) { lt.loadError = "cuBLASLt not found: " + why; return throwError(env, "kiln_cuda.loadCublasLt: " + lt.loadError); }
#define X(ret, name, params) sym(lib, lt.name, #name); \
    if (!lt.name) { lt.loadError = path + " lacks " #name; return throwError(env, "kiln_cuda.loadCublasLt: " + lt.loadError); }
    KC_LT_FNS
#undef X
    int rc = lt.cublasLtCreate(&lt.handle);
    if (rc != 0) { lt.loadError = ltError("cublasLtCreate", rc); return throwError(env, "kiln_cuda.loadCublasLt: " + lt.loadError); }
    lt.lib = lib;
  }
  return undef(env);
}

// Data types by kiln's names (cudaDataType_t values from library_types.h).
static int dataType(const std::string& d) {
  if (d == "f32") return 0;       // CUDA_R_32F
  if (d == "f16") return 2;       // CUDA_R_16F
  if (d == "bf16") return 14;     // CUDA_R_16BF
  if (d == "e4m3") return 28;     // CUDA_R_8F_E4M3
  if (d == "e5m2") return 29;     // CUDA_R_8F_E5M2
  return -1;
}

static bool prop(napi_env env, napi_value o, const char* k, napi_value* v) {
  bool has = false;
  napi_has_named_property(env, o, k, &has);
  if (!has) return false;
  napi_get_named_property(env, o, k, v);
  napi_valuetype t; napi_typeof(env, *v, &t);
  return t != napi_undefined && t != napi_null;
}

// matmul(p): D = alpha op(A) op(B) + beta C (+ bias, relu/gelu), column-major. p holds a, b, c, d
// (device pointers), m, n, k, lda, ldb, ldc, transA, transB, aType, bType, dType ("f32", "bf16",
// "f16", "e4m3", "e5m2"), alpha, beta, epilogue ("none" | "relu" | "gelu" | "bias" | "relu_bias" |
// "gelu_bias"), bias, aScale, bScale (device f32 pointers, fp8), workspace, workspaceBytes, stream.
static napi_value Matmul(napi_env env, napi_callback_info info) {
  Args a(env, info, "matmul");
  if (!a.ok) return nullptr;
  if (!lt.lib) return throwError(env, "kiln_cuda.matmul: cuBLASLt is not loaded (" + (lt.loadError.empty() ? "call loadCublasLt(path) first" : lt.loadError) + ")");
  napi_value o = a.at(0), v;
  auto u64 = [&](const char* k, uint64_t dflt) -> uint64_t {
    if (!prop(env, o, k, &v)) return dflt;
    uint64_t x; bool lossless; double d;
    if (napi_get_value_bigint_uint64(env, v, &x, &lossless) == napi_ok) return x;
    napi_get_value_double(env, v, &d);
    return (uint64_t)d;
  };
  auto f64 = [&](const char* k, double dflt) { double d = dflt; if (prop(env, o, k, &v)) napi_get_value_double(env, v, &d); return d; };
  auto flag = [&](const char* k) { bool b = false; if (prop(env, o, k, &v)) napi_get_value_bool(env, v, &b); return b; };
  auto text = [&](const char* k, const char* dflt) {
    if (!prop(env, o, k, &v)) return std::string(dflt);
    size_t n = 0; napi_get_value_string_utf8(env, v, nullptr, 0, &n);
    std::string s(n, '\0'); napi_get_value_string_utf8(env, v, s.data(), n + 1, &n); return s;
  };
  uint64_t m = u64("m", 0), n = u64("n", 0), k = u64("k", 0);
  if (!m || !n || !k) return throwError(env, "kiln_cuda.matmul: m, n and k must be positive (got " + std::to_string(m) + ", " + std::to_string(n) + ", " + std::to_string(k) + ")");
  int32_t ta = flag("transA") ? 1 : 0, tb = flag("transB") ? 1 : 0;  // CUBLAS_OP_N = 0, CUBLAS_OP_T = 1
  std::string an = text("aType", "f32"), bn = text("bType", an.c_str()), dn = text("dType", an == "e4m3" || an == "e5m2" ? "bf16" : an.c_str());
  int at = dataType(an), bt = dataType(bn), dt = dataType(dn);
  if (at < 0 || bt < 0 || dt < 0) return throwError(env, "kiln_cuda.matmul: unknown dtype (aType " + an + ", bType " + bn + ", dType " + dn + "; f32, f16, bf16, e4m3, e5m2)");
  bool fp8 = at >= 28;
  // fp32 inputs compute in fp32 (TF32 would change results against the cpu backend); others in fp32 too.
  int compute = 68;  // CUBLAS_COMPUTE_32F
  uint64_t lda = u64("lda", ta ? k : m), ldb = u64("ldb", tb ? n : k), ldc = u64("ldc", m);
  void *desc = nullptr, *la = nullptr, *lb = nullptr, *lc = nullptr, *pref = nullptr;
  std::string err;
  auto chk = [&](const char* call, int rc) { if (rc != 0 && err.empty()) err = ltError(call, rc); return rc == 0; };
  chk("cublasLtMatmulDescCreate", lt.cublasLtMatmulDescCreate(&desc, compute, 0 /* scale type CUDA_R_32F */));
  if (err.empty()) {
    chk("cublasLtMatmulDescSetAttribute(TRANSA)", lt.cublasLtMatmulDescSetAttribute(desc, 3, &ta, sizeof ta));
    chk("cublasLtMatmulDescSetAttribute(TRANSB)", lt.cublasLtMatmulDescSetAttribute(desc, 4, &tb, sizeof tb));
    std::string ep = text("epilogue", "none");
    static const std::pair<const char*, uint32_t> eps[] = {{"none", 1}, {"relu", 2}, {"bias", 4}, {"relu_bias", 6}, {"gelu", 32}, {"gelu_bias", 36}};
    uint32_t e = 0;
    for (auto& [name, val] : eps) if (ep == name) e = val;
    if (!e) err = "kiln_cuda.matmul: unknown epilogue " + ep + " (none, relu, gelu, bias, relu_bias, gelu_bias)";
    else chk("cublasLtMatmulDescSetAttribute(EPILOGUE)", lt.cublasLtMatmulDescSetAttribute(desc, 7, &e, sizeof e));
    uint64_t bias = u64("bias", 0);
    if (bias) chk("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", lt.cublasLtMatmulDescSetAttribute(desc, 8, &bias, sizeof bias));
    if (fp8) {
      uint64_t sa = u64("aScale", 0), sb = u64("bScale", 0);
      int8_t fast = 1;
      if (sa) chk("cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)", lt.cublasLtMatmulDescSetAttribute(desc, 17, &sa, sizeof sa));
      if (sb) chk("cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)", lt.cublasLtMatmulDescSetAttribute(desc, 18, &sb, sizeof sb));
      chk("cublasLtMatmulDescSetAttribute(FAST_ACCUM)", lt.cublasLtMatmulDescSetAttribute(desc, 25, &fast, sizeof fast));
    }
  }
  if (err.empty()) chk("cublasLtMatrixLayoutCreate(A)", lt.cublasLtMatrixLayoutCreate(&la, at, ta ? k : m, ta ? m : k, (int64_t)lda));
  if (err.empty()) chk("cublasLtMatrixLayoutCreate(B)", lt.cublasLtMatrixLayoutCreate(&lb, bt, tb ? n : k, tb ? k : n, (int64_t)ldb));
  if (err.empty()) chk("cublasLtMatrixLayoutCreate(D)", lt.cublasLtMatrixLayoutCreate(&lc, dt, m, n, (int64_t)ldc));
  uint64_t ws = u64("workspace", 0), wsBytes = u64("workspaceBytes", 0);
  if (err.empty()) chk("cublasLtMatmulPreferenceCreate", lt.cublasLtMatmulPreferenceCreate(&pref));
  if (err.empty()) chk("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)", lt.cublasLtMatmulPreferenceSetAttribute(pref, 1, &wsBytes, sizeof wsBytes));
  Heuristic h{};
  int found = 0;
  if (err.empty() && chk("cublasLtMatmulAlgoGetHeuristic", lt.cublasLtMatmulAlgoGetHeuristic(lt.handle, desc, la, lb, lc, lc, pref, 1, &h, &found)) && found == 0) {
    err = "cublasLtMatmulAlgoGetHeuristic found no algorithm for " + an + " x " + bn + " -> " + dn + " (m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " + std::to_string(k) + (fp8 ? "; fp8 needs sm_89+ and transA=true, transB=false" : "") + ")";
  }
  if (err.empty()) {
    float alpha = (float)f64("alpha", 1), beta = (float)f64("beta", 0);
    uint64_t A = u64("a", 0), B = u64("b", 0), D = u64("d", 0), C = u64("c", D);
    chk("cublasLtMatmul", lt.cublasLtMatmul(lt.handle, desc, &alpha, (void*)A, la, (void*)B, lb, &beta, (void*)C, lc, (void*)D, lc, h.algo, (void*)ws, wsBytes, (void*)u64("stream", 0)));
  }
  if (pref) lt.cublasLtMatmulPreferenceDestroy(pref);
  if (lc) lt.cublasLtMatrixLayoutDestroy(lc);
  if (lb) lt.cublasLtMatrixLayoutDestroy(lb);
  if (la) lt.cublasLtMatrixLayoutDestroy(la);
  if (desc) lt.cublasLtMatmulDescDestroy(desc);
  if (!err.empty()) return throwError(env, err.rfind("kiln_cuda", 0) == 0 ? err : "kiln_cuda.matmul: " + err);
  return undef(env);
}

const Export cublasLtExports[] = {{"loadCublasLt", LoadCublasLt}, {"matmul", Matmul}, {nullptr, nullptr}};

}  // namespace kc
