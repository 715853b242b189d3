// matmul.wgsl: C[b] = A[b] @ B[b] (+ epilogue), tiled through workgroup memory. Template filled by
// src/backends/webgpu/routines.ts; it does not choose tile sizes nor dtypes (those arrive as placeholders).
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal (u32 with `u`, bool as true/false), see the constants below.
//   //!BINDINGS   becomes the buffer bindings and their accessors, all computing in f32:
//                 load_a(i: u32) -> f32, load_b(i: u32) -> f32 (slots 1 and 2, element index i);
//                 store_out1(i, v) writes element i of slot 0; store_out2(i, v0, v1) writes elements
//                 i and i + 1 and needs i even (with packed f16/bf16 output that is one whole u32 word).
//                 A packed half whose word another invocation also writes goes through store_out1 (atomic).
//   //!EPILOGUE   becomes `fn epilogue(acc: f32, gid: i32) -> f32` (and the epilogue's input bindings).
//
// Layout: each workgroup owns a TILE_M x TILE_N output tile of one batch; thread (x, y) owns rows
// y + WG_Y * i (i < 4) and the 4 adjacent columns 4x .. 4x + 3 (adjacent so f16/bf16 pairs share a word).
// The batch runs along dispatch z, looping when there are more than 65535 batches.

const M: u32 = {{M}};
const N: u32 = {{N}};
const K: u32 = {{K}};
const BATCH: u32 = {{BATCH}};
const A_BATCH_STRIDE: u32 = {{A_BATCH_STRIDE}}; // 0 broadcasts A over the batch
const B_BATCH_STRIDE: u32 = {{B_BATCH_STRIDE}};
const TRANS_A: bool = {{TRANS_A}}; // A stored (k, m)
const TRANS_B: bool = {{TRANS_B}}; // B stored (n, k)
const TILE_M: u32 = {{TILE_M}};
const TILE_N: u32 = {{TILE_N}};
const TILE_K: u32 = {{TILE_K}};
const WG_X: u32 = TILE_N / 4u;
const WG_Y: u32 = TILE_M / 4u;
const THREADS: u32 = WG_X * WG_Y;

//!BINDINGS

//!EPILOGUE

var<workgroup> tile_a: array<f32, TILE_K * TILE_M>;              // [kk][row]
var<workgroup> tile_b: array<vec4<f32>, TILE_K * TILE_N / 4u>;   // [kk][col / 4]

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  for (var b = wid.z; b < BATCH; b += nwg.z) {
    let a_off = b * A_BATCH_STRIDE;
    let b_off = b * B_BATCH_STRIDE;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 += TILE_K) {
      // NOTE: consecutive threads walk the stored row of each operand, so global reads coalesce.
      for (var e = lidx; e < TILE_M * TILE_K; e += THREADS) {
        var r: u32;
        var kk: u32;
        if (TRANS_A) { r = e % TILE_M; kk = e / TILE_M; } else { kk = e % TILE_K; r = e / TILE_K; }
        let gr = row0 + r;
        let gk = k0 + kk;
        var v = 0.0;
        if (gr < M && gk < K) { v = load_a(a_off + select(gr * K + gk, gk * M + gr, TRANS_A)); }
        tile_a[kk * TILE_M + r] = v;
      }
      for (var e = lidx; e < TILE_K * TILE_N; e += THREADS) {
        var c: u32;
        var kk: u32;
        if (TRANS_B) { kk = e % TILE_K; c = e / TILE_K; } else { c = e % TILE_N; kk = e / TILE_N; }
        let gc = col0 + c;
        let gk = k0 + kk;
        var v = 0.0;
        if (gc < N && gk < K) { v = load_b(b_off + select(gk * N + gc, gc * K + gk, TRANS_B)); }
        tile_b[kk * (TILE_N / 4u) + c / 4u][c % 4u] = v;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < TILE_K; kk++) {
        let bv = tile_b[kk * (TILE_N / 4u) + lid.x];
        for (var i = 0u; i < 4u; i++) {
          acc[i] = fma(vec4<f32>(tile_a[kk * TILE_M + lid.y + WG_Y * i]), bv, acc[i]);
        }
      }
      workgroupBarrier();
    }
    let col = col0 + 4u * lid.x;
    let nv = select(0u, min(4u, N - col), col < N); // columns of this thread inside the matrix
    for (var i = 0u; i < 4u; i++) {
      let row = row0 + lid.y + WG_Y * i;
      // NOTE: skips with `continue` in this loop only: one in the batch loop would make its barriers non-uniform.
      if (row >= M || nv == 0u) { continue; }
      let base = b * M * N + row * N + col; // flat output index of (b, row, col)
      var v = acc[i];
      for (var j = 0u; j < 4u; j++) {
        if (j < nv) { v[j] = epilogue(v[j], i32(base + j)); }
      }
      // A word holds elements 2w and 2w + 1: written whole where both are this thread's. col is even,
      // so the row's parity decides which pairs share a word.
      // NOTE: static indices only (no loop over a variable pair start), so acc can stay in registers.
      if ((base & 1u) == 0u) {
        if (nv >= 2u) { store_out2(base, v.x, v.y); } else { store_out1(base, v.x); }
        if (nv == 4u) { store_out2(base + 2u, v.z, v.w); } else if (nv == 3u) { store_out1(base + 2u, v.z); }
      } else {
        store_out1(base, v.x);
        if (nv >= 3u) { store_out2(base + 1u, v.y, v.z); } else if (nv == 2u) { store_out1(base + 1u, v.y); }
        if (nv == 4u) { store_out1(base + 3u, v.w); }
      }
    }
  }
}
