// paged_attention.wgsl: attention for a ragged batch of T tokens over a paged KV cache. Token t of
// sequence tok_seq[t] at position tok_pos[t] attends to that sequence's keys 0..tok_pos[t]; key j is cache
// row tables[seq * MB + j / BS] * BS + j % BS. q and out (T, H, D); k and v caches (NB * BS, KVH, D).
// Template filled by src/backends/webgpu/routines.ts, which picks BQ and BK so workgroup memory fits 16 KiB.
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //!BINDINGS   becomes the bindings and accessors: load_q, load_k, load_v (slots 1..3, element index
//                 -> f32), store_out1(i, v) and store_out2(i, v0, v1) (slot 0; i even; whole packed words),
//                 and the i32 arrays tables, tok_seq, tok_pos (slots 4..6).
//
// The approach of attention.wgsl: one workgroup per (kv head, block of BQ of its H / KVH query heads),
// looping over tokens (t = wid.y, step nwg.y, so more than 65535 tokens fold into the loop). The block's
// query heads share every key, so each key block is read once from the cache for all of them: keys go
// through workgroup memory BK at a time with an online softmax (running max m, sum l, rescaled output o).
//   scores: thread t computes part (t % P) of the dot product for score t / P of the BQ x BK block;
//   softmax and P @ V: thread t works for query row t / L, owning the column pairs 2 * (lane + L * j).
// Every row of a workgroup sees the same keys (one token), so the loop bound is uniform.
// A padding token (tok_pos < 0) writes zeros. NOTE: a GPU cannot throw where the cpu routine does: a token
// whose sequence or position lies outside the block tables writes NaN, and a key whose table entry is not
// a block of the cache reads NaN values (so its token's output is NaN).
// NOTE: scores are assumed finite (no special casing of inf/NaN inputs, as in attention.wgsl).

const T: u32 = {{T}}; // tokens
const H: u32 = {{H}};
const KVH: u32 = {{KVH}};
const D: u32 = {{D}};
const BS: u32 = {{BS}}; // cache rows per block
const NB: u32 = {{NB}}; // blocks in the cache
const NSEQ: u32 = {{NSEQ}}; // rows of the block tables
const MB: u32 = {{MB}}; // block table entries per sequence
const SCALE: f32 = {{SCALE}};
const BQ: u32 = {{BQ}}; // query heads per workgroup
const BK: u32 = {{BK}}; // keys per block
const G: u32 = H / KVH; // query heads per kv head
const HB: u32 = (G + BQ - 1u) / BQ; // workgroups per kv head
const WG: u32 = 256u;
const P: u32 = WG / (BQ * BK); // threads per score (BQ * BK divides WG)
const DP: u32 = (D + P - 1u) / P; // dims per score part
const L: u32 = WG / BQ; // threads per query row
const NP: u32 = {{NP}}; // column pairs per thread: ceil(ceil(D / 2) / L)
// NOTE: a private var, not a const: a const-expression that yields NaN is a shader-creation error.
var<private> nan_bits: u32 = 0x7fc00000u;

//!BINDINGS

var<workgroup> sq: array<f32, BQ * D>; // scaled queries
var<workgroup> sk: array<f32, BK * D>;
var<workgroup> sv: array<f32, BK * D>;
var<workgroup> part: array<f32, WG>; // partial dot products
var<workgroup> ss: array<f32, BQ * BK>; // scores of the block

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let kvh = wid.x / HB;
  let g0 = (wid.x % HB) * BQ;
  let nq = min(BQ, G - g0); // query heads of this block: kvh * G + g0 ..
  let h0 = kvh * G + g0;
  let nan = bitcast<f32>(nan_bits);
  // Score role.
  let s_idx = lidx / P;
  let sp = lidx % P;
  let sr = s_idx / BK;
  let sc = s_idx % BK;
  let d_lo = min(sp * DP, D);
  let d_hi = min(d_lo + DP, D);
  // Row role.
  let r = lidx / L;
  let lane = lidx % L;

  for (var t = wid.y; t < T; t += nwg.y) {
    let seq = tok_seq[t];
    let pos = tok_pos[t];
    let inside = seq >= 0 && u32(seq) < NSEQ && pos >= 0 && u32(pos) < MB * BS;
    var k_end = 0u; // the token sees keys j < k_end
    if (inside) { k_end = u32(pos) + 1u; }
    let table = u32(max(seq, 0)) * MB;
    let q_base = (t * H + h0) * D;
    // NOTE: the previous token's last reads of sq came before a barrier every thread has passed.
    for (var e = lidx; e < BQ * D; e += WG) {
      var x = 0.0;
      if (e / D < nq) { x = load_q(q_base + e) * SCALE; }
      sq[e] = x;
    }
    var m = 0.0;
    var l = 0.0;
    var o: array<vec2<f32>, NP>;
    for (var k0 = 0u; k0 < k_end; k0 += BK) {
      // NOTE: also orders the previous block's reads of sk/sv/ss before they are overwritten.
      workgroupBarrier();
      for (var e = lidx; e < BK * D; e += WG) {
        let j = k0 + e / D;
        var kx = 0.0;
        var vx = 0.0;
        if (j < k_end) {
          let blk = tables[table + j / BS];
          if (blk >= 0 && u32(blk) < NB) {
            let at = ((u32(blk) * BS + j % BS) * KVH + kvh) * D + e % D;
            kx = load_k(at);
            vx = load_v(at);
          } else {
            vx = nan;
          }
        }
        sk[e] = kx;
        sv[e] = vx;
      }
      workgroupBarrier();
      var dot = 0.0;
      for (var d = d_lo; d < d_hi; d++) { dot = fma(sq[sr * D + d], sk[sc * D + d], dot); }
      part[lidx] = dot;
      workgroupBarrier();
      if (sp == 0u) {
        var sum = 0.0;
        for (var p = 0u; p < P; p++) { sum += part[s_idx * P + p]; }
        ss[s_idx] = sum;
      }
      workgroupBarrier();
      // Online softmax of this row over the block (every thread of the row computes the same m, l).
      // Every block has a visible key (k0 < k_end), so the first block starts the running max.
      let n_vis = min(k_end, k0 + BK);
      var m_blk = ss[r * BK];
      for (var j = k0 + 1u; j < n_vis; j++) { m_blk = max(m_blk, ss[r * BK + j - k0]); }
      let m_new = select(m_blk, max(m, m_blk), k0 > 0u);
      let alpha = select(0.0, exp(m - m_new), k0 > 0u);
      l *= alpha;
      for (var i = 0u; i < NP; i++) { o[i] *= alpha; }
      for (var j = k0; j < n_vis; j++) {
        let c = j - k0;
        let p = exp(ss[r * BK + c] - m_new);
        l += p;
        for (var i = 0u; i < NP; i++) {
          let d0 = 2u * (lane + L * i);
          if (d0 < D) {
            let d1 = min(d0 + 1u, D - 1u); // a lone last column reads itself; its half is never stored
            o[i] = fma(vec2<f32>(p), vec2<f32>(sv[c * D + d0], sv[c * D + d1]), o[i]);
          }
        }
      }
      m = m_new;
    }
    if (r < nq) {
      let inv_l = 1.0 / l;
      let row_base = q_base + r * D;
      for (var i = 0u; i < NP; i++) {
        let d0 = 2u * (lane + L * i);
        if (d0 >= D) { continue; }
        var v = vec2<f32>(0.0);
        if (inside) { v = o[i] * inv_l; } else if (pos >= 0) { v = vec2<f32>(nan); }
        let f = row_base + d0;
        if (d0 + 1u >= D) {
          store_out1(f, v.x);
        } else if ((f & 1u) == 0u) {
          store_out2(f, v.x, v.y);
        } else {
          // NOTE: an odd D misaligns rows: each half goes alone (atomically for packed outputs).
          store_out1(f, v.x);
          store_out1(f + 1u, v.y);
        }
      }
    }
  }
}
