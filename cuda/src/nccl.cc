// nccl.cc: NCCL communicators and collectives, dlopen'd, entry points declared here from nccl.h's ABI.
// A communicator joins `nranks` processes that share a unique id (128 bytes made by rank 0 with
// uniqueId() and carried to the others by kiln's own rendezvous, src/dist). Collectives are enqueued
// on a stream; send/recv pairs go in one group (groupStart/groupEnd, or sendRecv) so an all-to-all
// does not deadlock.
#include "kiln_cuda_exports.h"
#include <cstring>

namespace kc {

struct UniqueId { char internal[128]; };

#define KC_NCCL_FNS \
  X(const char*, ncclGetErrorString, (int)) \
  X(int, ncclGetVersion, (int*)) \
  X(int, ncclGetUniqueId, (UniqueId*)) \
  X(int, ncclCommInitRank, (void**, int, UniqueId, int)) \
  X(int, ncclCommDestroy, (void*)) \
  X(int, ncclCommGetAsyncError, (void*, int*)) \
  X(int, ncclAllReduce, (const void*, void*, size_t, int, int, void*, void*)) \
  X(int, ncclAllGather, (const void*, void*, size_t, int, void*, void*)) \
  X(int, ncclReduceScatter, (const void*, void*, size_t, int, int, void*, void*)) \
  X(int, ncclBroadcast, (const void*, void*, size_t, int, int, void*, void*)) \
  X(int, ncclSend, (const void*, size_t, int, int, void*, void*)) \
  X(int, ncclRecv, (void*, size_t, int, int, void*, void*)) \
  X(int, ncclGroupStart, ()) \
  X(int, ncclGroupEnd, ())

static struct {
  void* lib = nullptr;
  std::string loadError;
#define X(ret, name, params) ret(*name) params = nullptr;
  KC_NCCL_FNS
#undef X
} nc;

static std::string ncclError(const std::string& call, int rc) {
  const char* s = nc.ncclGetErrorString ? nc.ncclGetErrorString(rc) : nullptr;
  return call + " failed: " + (s ? s : "NCCL error " + std::to_string(rc));
}
static bool ready(napi_env env, const char* fn) {
  if (nc.lib) return true;
  throwError(env, std::string("kiln_cuda.") + fn + ": NCCL is not loaded (" + (nc.loadError.empty() ? "call loadNccl(path) first" : nc.loadError) + ")");
  return false;
}
#define NC(what, call) do { int rc_ = nc.call; if (rc_ != 0) return throwError(env, ncclError(what, rc_)); } while (0)

// ncclDataType_t and ncclRedOp_t by kiln's names.
static int dtypeOf(const std::string& d) {
  static const std::pair<const char*, int> t[] = {{"i8", 0}, {"u8", 1}, {"i32", 2}, {"u32", 3}, {"i64", 4}, {"u64", 5}, {"f16", 6}, {"f32", 7}, {"f64", 8}, {"bf16", 9}};
  for (auto& [n, v] : t) if (d == n) return v;
  return -1;
}
static int opOf(const std::string& o) {
  static const std::pair<const char*, int> t[] = {{"sum", 0}, {"prod", 1}, {"max", 2}, {"min", 3}, {"avg", 4}};
  for (auto& [n, v] : t) if (o == n) return v;
  return -1;
}

static napi_value LoadNccl(napi_env env, napi_callback_info info) {
  Args a(env, info, "loadNccl");
  std::string path = a.str(0);
  if (!a.ok) return nullptr;
  if (!nc.lib) {
    std::string why;
    void* lib = open(path, &why);
    if (!lib) { nc.loadError = "NCCL not found: " + why; return throwError(env, "kiln_cuda.loadNccl: " + nc.loadError); }
#define X(ret, name, params) sym(lib, nc.name, #name); \
    if (!nc.name) { nc.loadError = path + " lacks " #name; return throwError(env, "kiln_cuda.loadNccl: " + nc.loadError); }
    KC_NCCL_FNS
#undef X
    nc.lib = lib;
  }
  int v = 0;
  nc.ncclGetVersion(&v);
  return num(env, v);
}

// uniqueId(): 128 bytes (a Buffer) for ncclCommInitRank on every rank.
static napi_value UniqueIdFn(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclUniqueId");
  if (!ready(env, "ncclUniqueId")) return nullptr;
  UniqueId id;
  NC("ncclGetUniqueId", ncclGetUniqueId(&id));
  napi_value buf; void* unused;
  napi_create_buffer_copy(env, sizeof id, &id, &unused, &buf);
  return buf;
}

// commInit(id, nranks, rank): blocks until every rank has joined (run it on each rank's process).
static napi_value CommInit(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCommInit");
  auto [p, n] = a.bytes(0); int nranks = a.i32(1), rank = a.i32(2);
  if (!a.ok || !ready(env, "ncclCommInit")) return nullptr;
  if (n != sizeof(UniqueId)) return throwError(env, "kiln_cuda.ncclCommInit: the unique id must be 128 bytes (got " + std::to_string(n) + ")");
  if (rank < 0 || rank >= nranks) return throwError(env, "kiln_cuda.ncclCommInit: rank " + std::to_string(rank) + " is outside 0.." + std::to_string(nranks - 1));
  UniqueId id; memcpy(&id, p, sizeof id);
  void* comm = nullptr;
  NC("ncclCommInitRank(rank " + std::to_string(rank) + " of " + std::to_string(nranks) + ")", ncclCommInitRank(&comm, nranks, id, rank));
  return big(env, (uintptr_t)comm);
}
static napi_value CommDestroy(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCommDestroy");
  void* c = a.ptr(0);
  if (!a.ok || !ready(env, "ncclCommDestroy")) return nullptr;
  NC("ncclCommDestroy", ncclCommDestroy(c));
  return undef(env);
}

// collective(kind, comm, stream, send, recv, count, dtype, op, root): kind is allReduce, allGather
// (count = elements each rank sends), reduceScatter (count = elements each rank receives) or broadcast.
static napi_value Collective(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCollective");
  std::string kind = a.str(0); void* comm = a.ptr(1); void* s = a.ptr(2); void* send = a.ptr(3); void* recv = a.ptr(4);
  uint64_t count = a.u64(5); std::string dn = a.str(6); std::string on = a.argc > 7 ? a.str(7) : "sum"; int root = a.argc > 8 ? a.i32(8) : 0;
  if (!a.ok || !ready(env, "ncclCollective")) return nullptr;
  int dt = dtypeOf(dn), op = opOf(on);
  if (dt < 0) return throwError(env, "kiln_cuda.ncclCollective(" + kind + "): unknown dtype " + dn);
  if (op < 0) return throwError(env, "kiln_cuda.ncclCollective(" + kind + "): unknown reduction " + on + " (sum, prod, max, min, avg)");
  if (kind == "allReduce") NC("ncclAllReduce", ncclAllReduce(send, recv, count, dt, op, comm, s));
  else if (kind == "allGather") NC("ncclAllGather", ncclAllGather(send, recv, count, dt, comm, s));
  else if (kind == "reduceScatter") NC("ncclReduceScatter", ncclReduceScatter(send, recv, count, dt, op, comm, s));
  else if (kind == "broadcast") NC("ncclBroadcast", ncclBroadcast(send, recv, count, dt, root, comm, s));
  else return throwError(env, "kiln_cuda.ncclCollective: unknown collective " + kind + " (allReduce, allGather, reduceScatter, broadcast)");
  return undef(env);
}

// sendRecv(comm, stream, ops): ops = [{ send: bool, ptr, count, dtype, peer }], all in one group.
static napi_value SendRecv(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclSendRecv");
  void* comm = a.ptr(0); void* s = a.ptr(1);
  uint32_t n = 0;
  if (!a.ok || !ready(env, "ncclSendRecv")) return nullptr;
  if (napi_get_array_length(env, a.at(2), &n) != napi_ok) { a.fail(2, "an array of { send, ptr, count, dtype, peer }"); return nullptr; }
  NC("ncclGroupStart", ncclGroupStart());
  std::string err;
  for (uint32_t i = 0; i < n && err.empty(); i++) {
    napi_value o, v; napi_get_element(env, a.at(2), i, &o);
    bool isSend = false; uint64_t ptr = 0, count = 0; bool lossless; double d = 0; int peer = -1;
    char dn[16] = {0}; size_t len = 0;
    napi_get_named_property(env, o, "send", &v); napi_get_value_bool(env, v, &isSend);
    napi_get_named_property(env, o, "ptr", &v);
    if (napi_get_value_bigint_uint64(env, v, &ptr, &lossless) != napi_ok) { napi_get_value_double(env, v, &d); ptr = (uint64_t)d; }
    napi_get_named_property(env, o, "count", &v); napi_get_value_double(env, v, &d); count = (uint64_t)d;
    napi_get_named_property(env, o, "peer", &v); napi_get_value_int32(env, v, &peer);
    napi_get_named_property(env, o, "dtype", &v); napi_get_value_string_utf8(env, v, dn, sizeof dn, &len);
    int dt = dtypeOf(dn);
    if (dt < 0) { err = "kiln_cuda.ncclSendRecv: op " + std::to_string(i) + " has unknown dtype " + dn; break; }
    int rc = isSend ? nc.ncclSend((void*)ptr, count, dt, peer, comm, s) : nc.ncclRecv((void*)ptr, count, dt, peer, comm, s);
    if (rc != 0) err = ncclError(std::string(isSend ? "ncclSend" : "ncclRecv") + "(op " + std::to_string(i) + ", peer " + std::to_string(peer) + ")", rc);
  }
  int rc = nc.ncclGroupEnd();  // always close the group, also after a failed op
  if (!err.empty()) return throwError(env, err);
  if (rc != 0) return throwError(env, ncclError("ncclGroupEnd", rc));
  return undef(env);
}

const Export ncclExports[] = {
  {"loadNccl", LoadNccl}, {"ncclUniqueId", UniqueIdFn}, {"ncclCommInit", CommInit}, {"ncclCommDestroy", CommDestroy},
  {"ncclCollective", Collective}, {"ncclSendRecv", SendRecv}, {nullptr, nullptr},
};

}  // namespace kc
