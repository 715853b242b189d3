// nccl.cc: NCCL communicators and collectives, dlopen'd, entry points declared here from nccl.h's ABI.
// A communicator joins `nranks` processes that share a unique id (128 bytes made by rank 0 with
// uniqueId() and carried to the others by kiln's own rendezvous, src/dist). Collectives are enqueued
// on a stream; send/recv pairs go in one group (groupStart/groupEnd, or sendRecv) so an all-to-all
// does not deadlock. ncclDataType_t and ncclRedOp_t travel as their numbers: the one table of kiln's names
// to NCCL's values is src/dist/nccl/nccl_types.ts (plain data, checked there against nccl.h); here only the
// range is checked, so a bad value is a JS error naming it rather than NCCL's "invalid argument".
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
  X(int, ncclCommAbort, (void*)) \
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

// The value ranges of nccl.h's enums: ncclInt8 (0) .. ncclFloat8e5m2 (11); ncclSum (0) .. ncclAvg (4).
static const int kNumTypes = 12, kNumOps = 5;
static std::string checkCodes(const std::string& what, int dt, int op) {
  if (dt < 0 || dt >= kNumTypes) return "kiln_cuda." + what + ": ncclDataType_t " + std::to_string(dt) + " is outside 0.." + std::to_string(kNumTypes - 1);
  if (op < 0 || op >= kNumOps) return "kiln_cuda." + what + ": ncclRedOp_t " + std::to_string(op) + " is outside 0.." + std::to_string(kNumOps - 1);
  return "";
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

// commAbort(comm): frees the communicator and stops whatever it still runs on the device; what a rank
// does when a peer is dead or hung (a destroy would wait for the collectives that never finish).
static napi_value CommAbort(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCommAbort");
  void* c = a.ptr(0);
  if (!a.ok || !ready(env, "ncclCommAbort")) return nullptr;
  NC("ncclCommAbort", ncclCommAbort(c));
  return undef(env);
}
// commAsyncError(comm): "" while the communicator is healthy, else NCCL's string for its asynchronous
// error (a peer that went away, a network failure), which a stream that never finishes does not say.
static napi_value CommAsyncError(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCommAsyncError");
  void* c = a.ptr(0);
  if (!a.ok || !ready(env, "ncclCommAsyncError")) return nullptr;
  int err = 0;
  NC("ncclCommGetAsyncError", ncclCommGetAsyncError(c, &err));
  // NOTE: ncclInProgress (7) is a non-blocking communicator still working, not a failure.
  return str(env, err == 0 || err == 7 ? "" : ncclError("asynchronous", err));
}

// collective(kind, comm, stream, send, recv, count, dtype, op, root): kind is allReduce, allGather
// (count = elements each rank sends), reduceScatter (count = elements each rank receives) or broadcast;
// dtype and op are ncclDataType_t and ncclRedOp_t numbers.
static napi_value Collective(napi_env env, napi_callback_info info) {
  Args a(env, info, "ncclCollective");
  std::string kind = a.str(0); void* comm = a.ptr(1); void* s = a.ptr(2); void* send = a.ptr(3); void* recv = a.ptr(4);
  uint64_t count = a.u64(5); int dt = a.i32(6); int op = a.argc > 7 ? a.i32(7) : 0; int root = a.argc > 8 ? a.i32(8) : 0;
  if (!a.ok) return nullptr;
  std::string bad = checkCodes("ncclCollective(" + kind + ")", dt, op);
  if (!bad.empty()) return throwError(env, bad);
  if (!ready(env, "ncclCollective")) return nullptr;
  if (kind == "allReduce") NC("ncclAllReduce", ncclAllReduce(send, recv, count, dt, op, comm, s));
  else if (kind == "allGather") NC("ncclAllGather", ncclAllGather(send, recv, count, dt, comm, s));
  else if (kind == "reduceScatter") NC("ncclReduceScatter", ncclReduceScatter(send, recv, count, dt, op, comm, s));
  else if (kind == "broadcast") NC("ncclBroadcast", ncclBroadcast(send, recv, count, dt, root, comm, s));
  else return throwError(env, "kiln_cuda.ncclCollective: unknown collective " + kind + " (allReduce, allGather, reduceScatter, broadcast)");
  return undef(env);
}

// sendRecv(comm, stream, ops): ops = [{ send: bool, ptr, count, dtype, peer }] (dtype: an ncclDataType_t
// number), all in one group.
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
    int dt = -1;
    napi_get_named_property(env, o, "send", &v); napi_get_value_bool(env, v, &isSend);
    napi_get_named_property(env, o, "ptr", &v);
    if (napi_get_value_bigint_uint64(env, v, &ptr, &lossless) != napi_ok) { napi_get_value_double(env, v, &d); ptr = (uint64_t)d; }
    napi_get_named_property(env, o, "count", &v); napi_get_value_double(env, v, &d); count = (uint64_t)d;
    napi_get_named_property(env, o, "peer", &v); napi_get_value_int32(env, v, &peer);
    napi_get_named_property(env, o, "dtype", &v); napi_get_value_int32(env, v, &dt);
    if (dt < 0 || dt >= kNumTypes) { err = "kiln_cuda.ncclSendRecv: op " + std::to_string(i) + ": ncclDataType_t " + std::to_string(dt) + " is outside 0.." + std::to_string(kNumTypes - 1); break; }
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
  {"ncclCommAbort", CommAbort}, {"ncclCommAsyncError", CommAsyncError},
  {"ncclCollective", Collective}, {"ncclSendRecv", SendRecv}, {nullptr, nullptr},
};

}  // namespace kc
