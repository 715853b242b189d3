// softmax.wgsl: softmax over the last axis of a (ROWS, COLS) input, one workgroup per row.
// Template filled by src/backends/webgpu/routines.ts (which picks WG and the dtypes).
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //!BINDINGS   becomes the bindings and accessors: load_x(i: u32) -> f32 (slot 1), store_out1(i, v)
//                 and store_out2(i, v0, v1) (slot 0; i even; packed f16/bf16 words written whole).
//   //#if SUBGROUPS ... //#else ... //#endif   the row reduction within subgroups first (the device has
//                 subgroups), else a tree in workgroup memory.
//
// Matches the primitive reference exp(x - max(x)) / sum(exp(x - max(x))): a NaN or a +inf in a row makes
// the whole row NaN (x - max is NaN somewhere and the sum is NaN), a row of only -inf is NaN (-inf - -inf),
// and a -inf entry next to finite ones gives exactly 0.
// NOTE: WGSL lets implementations assume floats are finite, so NaN/inf are classified by their bits
// and never fed to max/exp: each thread keeps an online (max, sum) of the finite entries only.

//#if SUBGROUPS
enable subgroups;
requires subgroup_id;
//#endif

const ROWS: u32 = {{ROWS}};
const COLS: u32 = {{COLS}};
const WG: u32 = {{WG}}; // a power of two
const POISON: u32 = 1u; // a NaN or +inf was seen
const FINITE: u32 = 2u; // a finite value was seen
const NEG_INF_BITS: u32 = 0xff800000u;
// NOTE: a private var, not a const: a const-expression that yields NaN is a shader-creation error.
var<private> nan_bits: u32 = 0x7fc00000u;

//!BINDINGS

//#if SUBGROUPS
// One slot per subgroup; WebGPU's smallest subgroup size is 4.
const SLOTS: u32 = WG / 4u;
const LOWEST: f32 = -0x1.fffffep+127f; // below every finite max, so a subgroup's empty lanes never win
//#else
const SLOTS: u32 = WG;
//#endif
var<workgroup> red_m: array<f32, SLOTS>;
var<workgroup> red_s: array<f32, SLOTS>;
var<workgroup> red_f: array<u32, SLOTS>;

fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
}

// Running (max, sum of exp(x - max)) merged with another one; both must hold FINITE.
fn merge_sum(m1: f32, s1: f32, m2: f32, s2: f32) -> f32 {
  let m = max(m1, m2);
  return s1 * exp(m1 - m) + s2 * exp(m2 - m);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
//#if SUBGROUPS
        @builtin(subgroup_id) sgid: u32,
        @builtin(num_subgroups) nsg: u32,
//#endif
        @builtin(local_invocation_index) lidx: u32) {
  for (var row = wid.x; row < ROWS; row += nwg.x) {
    let base = row * COLS;
    var m = 0.0;
    var s = 0.0;
    var flags = 0u;
    for (var c = lidx; c < COLS; c += WG) {
      let x = load_x(base + c);
      if (!is_finite(x)) {
        if (bitcast<u32>(x) != NEG_INF_BITS) { flags |= POISON; }
        continue;
      }
      if ((flags & FINITE) == 0u) {
        m = x;
        s = 1.0;
      } else if (x > m) {
        s = s * exp(m - x) + 1.0;
        m = x;
      } else {
        s += exp(x - m);
      }
      flags |= FINITE;
    }
//#if SUBGROUPS
    // Within the subgroup: the max of the lanes' finite maxima, their sums rescaled to it, the flags or-ed.
    let fin = (flags & FINITE) != 0u;
    let sg_m = subgroupMax(select(LOWEST, m, fin));
    let sg_s = subgroupAdd(select(0.0, s * exp(select(0.0, m - sg_m, fin)), fin));
    let sg_f = subgroupOr(flags);
    if (subgroupElect()) {
      red_m[sgid] = sg_m;
      red_s[sgid] = sg_s;
      red_f[sgid] = sg_f;
    }
    workgroupBarrier();
    // Across subgroups: every thread merges the subgroups' results in the same order.
    var row_m = 0.0;
    var row_s = 0.0;
    var row_f = 0u;
    for (var i = 0u; i < nsg; i++) {
      let f = red_f[i];
      if ((f & FINITE) != 0u) {
        if ((row_f & FINITE) == 0u) {
          row_m = red_m[i];
          row_s = red_s[i];
        } else {
          row_s = merge_sum(row_m, row_s, red_m[i], red_s[i]);
          row_m = max(row_m, red_m[i]);
        }
      }
      row_f |= f;
    }
//#else
    red_m[lidx] = m;
    red_s[lidx] = s;
    red_f[lidx] = flags;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
      if (lidx < stride) {
        let f1 = red_f[lidx];
        let f2 = red_f[lidx + stride];
        if ((f1 & FINITE) == 0u) {
          red_m[lidx] = red_m[lidx + stride];
          red_s[lidx] = red_s[lidx + stride];
        } else if ((f2 & FINITE) != 0u) {
          let m1 = red_m[lidx];
          let m2 = red_m[lidx + stride];
          red_s[lidx] = merge_sum(m1, red_s[lidx], m2, red_s[lidx + stride]);
          red_m[lidx] = max(m1, m2);
        }
        red_f[lidx] = f1 | f2;
      }
      workgroupBarrier();
    }
    let row_m = red_m[0];
    let row_s = red_s[0];
    let row_f = red_f[0];
//#endif
    let inv_s = 1.0 / row_s;
    let all_nan = (row_f & POISON) != 0u || (row_f & FINITE) == 0u;
    // Pairs of columns that share an output word: (c0, c1) with base + c0 even; c0 = -1 or c1 = COLS
    // where the row starts or ends mid-word (that half is written alone).
    let a = base & 1u;
    for (var q = 2u * lidx; q < COLS + a; q += 2u * WG) {
      let c0 = i32(q) - i32(a);
      let c1 = c0 + 1;
      var v0 = 0.0;
      var v1 = 0.0;
      if (c0 >= 0) { v0 = load_x(base + u32(c0)); }
      if (c1 < i32(COLS)) { v1 = load_x(base + u32(c1)); }
      v0 = select(select(0.0, exp(v0 - row_m) * inv_s, is_finite(v0)), bitcast<f32>(nan_bits), all_nan);
      v1 = select(select(0.0, exp(v1 - row_m) * inv_s, is_finite(v1)), bitcast<f32>(nan_bits), all_nan);
      if (c0 >= 0 && c1 < i32(COLS)) {
        store_out2(base + u32(c0), v0, v1);
      } else if (c0 >= 0) {
        store_out1(base + u32(c0), v0);
      } else {
        store_out1(base + u32(c1), v1);
      }
    }
    // NOTE: the next row reuses red_*; nobody may write them before everyone has read red_*[0].
    workgroupBarrier();
  }
}
