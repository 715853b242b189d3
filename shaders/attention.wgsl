// attention.wgsl: flash-attention forward, out = softmax(q k^T * SCALE [+ causal mask]) v, with
// q and out (BATCH, H, TQ, D), k and v (BATCH, KVH, TK, D). Template filled by
// src/backends/webgpu/routines.ts, which picks BQ and BK so the workgroup memory fits in 16 KiB.
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //!BINDINGS   becomes the bindings and accessors: load_q, load_k, load_v (slots 1..3, element index
//                 -> f32), store_out1(i, v) and store_out2(i, v0, v1) (slot 0; i even; whole packed words).
//
// One workgroup per (batch, head, block of BQ queries); key blocks of BK go through workgroup memory
// with an online softmax (running max m, running sum l, rescaled output o).
//   scores: thread t computes part (t % P) of the dot product for score t / P of the BQ x BK block;
//   softmax and P @ V: thread t works for query row t / L, owning the column pairs 2 * (lane + L * j).
// NOTE: loops over o have the constant trip count NP and index it statically once unrolled, so o can
// stay in registers.
// Grouped-query: head h reads kv head h / (H / KVH). Causal: query i sees keys j <= i + TK - TQ.
// A query that sees no key at all is NaN, as softmax over a row of -inf is in the reference.
// NOTE: scores are assumed finite (no special casing of inf/NaN inputs, unlike softmax.wgsl).

const BATCH: u32 = {{BATCH}};
const H: u32 = {{H}};
const KVH: u32 = {{KVH}};
const TQ: u32 = {{TQ}};
const TK: u32 = {{TK}};
const D: u32 = {{D}};
const CAUSAL: bool = {{CAUSAL}};
const SCALE: f32 = {{SCALE}};
const BQ: u32 = {{BQ}}; // queries per workgroup
const BK: u32 = {{BK}}; // keys per block
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
  let q0 = wid.x * BQ;
  let h = wid.y;
  let kvh = h / (H / KVH);
  let shift = i32(TK) - i32(TQ);
  // Keys past k_end are masked for every query of this block.
  var k_end = TK;
  if (CAUSAL) { k_end = u32(clamp(i32(min(q0 + BQ, TQ)) + shift, 0, i32(TK))); }
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
  let qi = q0 + r;
  var lim = TK; // this row sees keys j < lim
  if (CAUSAL) { lim = u32(clamp(i32(qi) + shift + 1, 0, i32(TK))); }

  for (var b = wid.z; b < BATCH; b += nwg.z) {
    let q_base = ((b * H + h) * TQ + q0) * D;
    let kv_base = (b * KVH + kvh) * TK * D;
    for (var e = lidx; e < BQ * D; e += WG) {
      var x = 0.0;
      if (q0 + e / D < TQ) { x = load_q(q_base + e) * SCALE; }
      sq[e] = x;
    }
    var m = 0.0;
    var l = 0.0;
    var seen = false;
    var o: array<vec2<f32>, NP>;
    for (var k0 = 0u; k0 < k_end; k0 += BK) {
      // NOTE: also orders the previous block's reads of sk/sv/ss before they are overwritten.
      workgroupBarrier();
      for (var e = lidx; e < BK * D; e += WG) {
        var kx = 0.0;
        var vx = 0.0;
        if (k0 + e / D < TK) {
          kx = load_k(kv_base + k0 * D + e);
          vx = load_v(kv_base + k0 * D + e);
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
      // NOTE: no `continue` here: it would make the barriers above non-uniform.
      let n_vis = min(lim, k0 + BK);
      if (n_vis > k0) {
        var m_blk = ss[r * BK];
        for (var j = k0 + 1u; j < n_vis; j++) { m_blk = max(m_blk, ss[r * BK + j - k0]); }
        let m_new = select(m_blk, max(m, m_blk), seen);
        let alpha = select(0.0, exp(m - m_new), seen);
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
        seen = true;
      }
    }
    if (qi < TQ) {
      let inv_l = 1.0 / l;
      let row_base = q_base + r * D;
      for (var i = 0u; i < NP; i++) {
        let d0 = 2u * (lane + L * i);
        if (d0 >= D) { continue; }
        let nan = bitcast<f32>(nan_bits);
        let v = select(vec2<f32>(nan), o[i] * inv_l, seen);
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
