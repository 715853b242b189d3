// attention_backward.wgsl: the gradients of attention (see attention.wgsl) recomputed from q, k, v, the
// forward's output o and its gradient dO (FlashAttention-2's equations), into one output
// [dQ (BATCH, H, TQ, D) | dK (BATCH, KVH, TK, D) | dV (BATCH, KVH, TK, D)]. Template filled by
// src/backends/webgpu/routines.ts.
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //!BINDINGS   becomes the bindings: store_out1(i, v) and buf_out (slot 0) and load_q, load_k, load_v,
//                 load_o, load_do (slots 1..5, element index -> f32).
//   //#if CHUNKED  more rows than one chunk: dK and dV are read back from buf_out between chunks, so the
//                 output must be f32 (buf_out: array<f32>); with one chunk any output dtype is written once.
//
// One workgroup per (batch, kv head) owns every gradient of that kv head, so nothing is shared between
// workgroups (WGSL has no float atomics): its rows are the GROUP * TQ queries of its query heads.
// For each chunk of RC rows:
//   rows phase: thread t takes rows t, t + WG, ...: the row's logsumexp (an online pass over its keys) and
//     D = dO . o go to workgroup memory; then dQ = sum_j dS_j k_j with dS_j = P_j (dO . v_j - D) SCALE.
//   keys phase: thread t takes keys t, t + WG, ...: over the chunk's rows that see the key, recompute P and
//     dS from the row's logsumexp and accumulate dV += P dO and dK += dS q (across chunks in the f32 output).
// NOTE: correctness first: parallelism is BATCH * KVH workgroups of WG threads, operands are read from
// storage (no tiles in workgroup memory). A tiled version (FlashAttention-2's key-block workgroups plus a
// dQ pass) needs two dispatches; routines are one dispatch today.
// Causal: query i sees keys j <= i + TK - TQ. Scores are assumed finite, as in attention.wgsl.

const BATCH: u32 = {{BATCH}};
const H: u32 = {{H}};
const KVH: u32 = {{KVH}};
const TQ: u32 = {{TQ}};
const TK: u32 = {{TK}};
const D: u32 = {{D}};
const CAUSAL: bool = {{CAUSAL}};
const SCALE: f32 = {{SCALE}};
const GROUP: u32 = H / KVH;
const ROWS: u32 = GROUP * TQ; // query rows per kv head
const WG: u32 = {{WG}};
const RC: u32 = {{RC}}; // rows per chunk (their statistics live in workgroup memory)
const DQ_ELEMS: u32 = BATCH * H * TQ * D;
const DKV_ELEMS: u32 = BATCH * KVH * TK * D;

//!BINDINGS

var<workgroup> lse: array<f32, RC>;
var<workgroup> dsum: array<f32, RC>;

/** Keys row i of its head sees: j < visible(i). */
fn visible(i: u32) -> u32 {
  if (CAUSAL) { return u32(clamp(i32(i) + i32(TK) - i32(TQ) + 1, 0, i32(TK))); }
  return TK;
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let g = wid.x;
  var acc: array<f32, D>;
  var dk: array<f32, D>;
  var dv: array<f32, D>;
  for (var b = wid.y; b < BATCH; b += nwg.y) {
    let kv_base = (b * KVH + g) * TK * D;
    // Row r of this kv head is query r % TQ of head g * GROUP + r / TQ: q_base + r * D.
    let q_base = (b * H + g * GROUP) * TQ * D;
    for (var c0 = 0u; c0 < ROWS; c0 += RC) {
      // ---- rows phase ----
      for (var r = c0 + lidx; r < min(c0 + RC, ROWS); r += WG) {
        let qo = q_base + r * D;
        let n = visible(r % TQ);
        var m = -3.4e38;
        var l = 0.0;
        for (var j = 0u; j < n; j++) {
          var s = 0.0;
          for (var d = 0u; d < D; d++) { s = fma(load_q(qo + d), load_k(kv_base + j * D + d), s); }
          s *= SCALE;
          let m_new = max(m, s);
          l = l * exp(m - m_new) + exp(s - m_new);
          m = m_new;
        }
        var di = 0.0;
        for (var d = 0u; d < D; d++) { di = fma(load_do(qo + d), load_o(qo + d), di); }
        let row_lse = m + log(l);
        lse[r - c0] = row_lse;
        dsum[r - c0] = di;
        for (var d = 0u; d < D; d++) { acc[d] = 0.0; }
        for (var j = 0u; j < n; j++) {
          var s = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < D; d++) {
            s = fma(load_q(qo + d), load_k(kv_base + j * D + d), s);
            dp = fma(load_do(qo + d), load_v(kv_base + j * D + d), dp);
          }
          let ds = exp(s * SCALE - row_lse) * (dp - di) * SCALE;
          for (var d = 0u; d < D; d++) { acc[d] = fma(ds, load_k(kv_base + j * D + d), acc[d]); }
        }
        for (var d = 0u; d < D; d++) { store_out1(qo + d, acc[d]); }
      }
      workgroupBarrier();
      // ---- keys phase ----
      for (var j = lidx; j < TK; j += WG) {
        let ko = kv_base + j * D;
        for (var d = 0u; d < D; d++) {
          dk[d] = 0.0;
          dv[d] = 0.0;
//#if CHUNKED
          if (c0 > 0u) {
            dk[d] = buf_out[DQ_ELEMS + ko + d];
            dv[d] = buf_out[DQ_ELEMS + DKV_ELEMS + ko + d];
          }
//#endif
        }
        for (var r = c0; r < min(c0 + RC, ROWS); r++) {
          if (j >= visible(r % TQ)) { continue; }
          let qo = q_base + r * D;
          var s = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < D; d++) {
            s = fma(load_q(qo + d), load_k(ko + d), s);
            dp = fma(load_do(qo + d), load_v(ko + d), dp);
          }
          let p = exp(s * SCALE - lse[r - c0]);
          let ds = p * (dp - dsum[r - c0]) * SCALE;
          for (var d = 0u; d < D; d++) {
            dv[d] = fma(p, load_do(qo + d), dv[d]);
            dk[d] = fma(ds, load_q(qo + d), dk[d]);
          }
        }
        for (var d = 0u; d < D; d++) {
          store_out1(DQ_ELEMS + ko + d, dk[d]);
          store_out1(DQ_ELEMS + DKV_ELEMS + ko + d, dv[d]);
        }
      }
      // NOTE: the next chunk overwrites lse and dsum.
      workgroupBarrier();
    }
  }
}
