// matmul_q.wgsl: out (M, N) = x (M, K) @ dequant(w)^T, w (N, K) as GGUF Q8_0, Q4_0 or Q4_K blocks read in place.
// Template filled by src/backends/webgpu/routines.ts.
//
// Placeholders: {{ NAME }} (written without the spaces) a WGSL literal, see the constants below.
// Bindings: slot 0 the f32 output, slot 1 x (f32), slot 2 w's bytes packed 4 per u32 word (u8 storage).
// //#if Q4 picks Q4_0 (f16 d, 16 bytes of nibbles: element j low nibble of byte j, j + 16 its high nibble,
// both minus 8); otherwise Q8_0 (f16 d, 32 signed bytes). The //!ROW_DOT block calls row_dot_q for those,
// row_dot_q4k for Q4_K (144-byte super-blocks of 256, layout in src/models/formats/encode_q4k.ts) and
// row_dot_fp8 for fp8e4m3_b128 (f32 scale + 128 E4M3 codes, src/models/formats/fp8_blocks.ts).
//
// NOTE: one invocation per output element, walking w's row block by block: the block's scale is read
// once and the integer-times-x sum is scaled once per block (dequantized in registers, never stored).
// Simple on purpose: SwiftShader (the only adapter tested here) gains nothing from tiling; a subgroup
// GEMV (a row per subgroup, lanes over blocks) is the next step on real GPUs.

const M: u32 = {{M}};
const N: u32 = {{N}};
const K: u32 = {{K}};
const ROW_BYTES: u32 = {{ROW_BYTES}};
const BLOCK_BYTES: u32 = {{BLOCK_BYTES}};
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;

fn byte_at(i: u32) -> u32 {
  return (w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

// Q4_K: a super-block is 144 bytes (36 words), so rows and blocks are word-aligned and read as whole words:
// word 0 holds d and dmin, words 1-3 the 6-bit scales and mins, words 4-35 the nibbles (32 per sub-block pair).
// y = sum over sub-blocks j of (d sc_j) dot(q_j, x_j) - (dmin m_j) sum(x_j).
fn scale_byte(o: u32, i: u32) -> u32 {
  return (w[o + 1u + (i >> 2u)] >> ((i & 3u) * 8u)) & 0xffu;
}

fn row_dot_q4k(col: u32, x0: u32) -> f32 {
  var acc = 0.0;
  for (var b = 0u; b < K / 256u; b++) {
    let o = (col * ROW_BYTES) / 4u + b * 36u; // word index of the super-block
    let dm = unpack2x16float(w[o]);
    let xb = x0 + b * 256u;
    for (var j = 0u; j < 8u; j++) {
      var sc: u32;
      var mn: u32;
      if (j < 4u) {
        sc = scale_byte(o, j) & 63u;
        mn = scale_byte(o, j + 4u) & 63u;
      } else {
        sc = (scale_byte(o, j + 4u) & 15u) | ((scale_byte(o, j - 4u) >> 6u) << 4u);
        mn = (scale_byte(o, j + 4u) >> 4u) | ((scale_byte(o, j) >> 6u) << 4u);
      }
      let shift = (j & 1u) * 4u;
      let qw = o + 4u + (j >> 1u) * 8u; // the pair's 8 words of nibbles
      let xj = xb + j * 32u;
      var dq = 0.0;
      var sx = 0.0;
      for (var t = 0u; t < 8u; t++) {
        let word = w[qw + t] >> shift;
        for (var e = 0u; e < 4u; e++) {
          let xv = x[xj + t * 4u + e];
          dq += f32((word >> (e * 8u)) & 15u) * xv;
          sx += xv;
        }
      }
      acc += (dm.x * f32(sc)) * dq - (dm.y * f32(mn)) * sx;
    }
  }
  return acc;
}

// fp8e4m3_b128: a block is 132 bytes (33 words): word 0 the f32 scale, then 32 words of 4 E4M3 codes.
// NOTE: codes 0x7f / 0xff (NaN) decode as 480 here; kiln's encoder never writes them.
fn e4m3(c: u32) -> f32 {
  let e = (c >> 3u) & 15u;
  let m = f32(c & 7u);
  var mag = ldexp(m, -9);
  if (e != 0u) { mag = ldexp(m + 8.0, i32(e) - 10); }
  return select(mag, -mag, (c & 0x80u) != 0u);
}

fn row_dot_fp8(col: u32, x0: u32) -> f32 {
  var acc = 0.0;
  for (var b = 0u; b < K / 128u; b++) {
    let o = (col * ROW_BYTES) / 4u + b * 33u;
    let xb = x0 + b * 128u;
    var s = 0.0;
    for (var t = 0u; t < 32u; t++) {
      let word = w[o + 1u + t];
      for (var e = 0u; e < 4u; e++) { s += e4m3((word >> (e * 8u)) & 0xffu) * x[xb + t * 4u + e]; }
    }
    acc += bitcast<f32>(w[o]) * s;
  }
  return acc;
}

// Q8_0 / Q4_0: blocks of 34 or 18 bytes are not word-aligned, so bytes are picked out of their words.
fn row_dot_q(col: u32, x0: u32) -> f32 {
  var acc = 0.0;
  for (var b = 0u; b < K / 32u; b++) {
    let o = col * ROW_BYTES + b * BLOCK_BYTES;
    let d = unpack2x16float(byte_at(o) | (byte_at(o + 1u) << 8u)).x;
    let xb = x0 + b * 32u;
    var s = 0.0;
//#if Q4
    for (var j = 0u; j < 16u; j++) {
      let q = byte_at(o + 2u + j);
      s += f32(i32(q & 15u) - 8) * x[xb + j] + f32(i32(q >> 4u) - 8) * x[xb + j + 16u];
    }
//#else
    for (var j = 0u; j < 32u; j++) {
      let q = bitcast<i32>(byte_at(o + 2u + j) << 24u) >> 24u;
      s += f32(q) * x[xb + j];
    }
//#endif
    acc += d * s;
  }
  return acc;
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let gid = (wid.y * nwg.x + wid.x) * WG + lidx;
  if (gid >= M * N) { return; }
  let row = gid / N; // of x
  let col = gid % N; // row of w
//!ROW_DOT
}
