// scatter_add.wgsl: out = zeros(ROWS, COLS), out[idx[i], :] += src[i, :] for i < N, f32.
// Template filled by src/backends/webgpu/routines.ts.
//
// Placeholders: {{ NAME }} (written without the spaces) a WGSL literal, see the constants below.
// Bindings: slot 0 the output, slot 1 the i32 indices, slot 2 the source rows.
//
// NOTE: deterministic without atomics or a sort: every output element has one owner. Invocation
// (column c, split s) owns column c of rows [s * RPS, (s + 1) * RPS): it zeroes them, then walks all N
// indices in order and adds the sources that land in its rows. So each element is summed in ascending
// i, the same order every run (float atomics would add in arrival order, and WGSL has only integer
// atomics, so a CAS loop). The cost is N x SPLITS index reads (the same index for a whole column block,
// a broadcast load) plus N x COLS adds; SPLITS only multiplies the invocations when COLS alone is too
// few to fill the device. An index outside [0, ROWS) lands in no invocation's rows: it adds nothing,
// as a gather there reads 0.

const ROWS: u32 = {{ROWS}};
const COLS: u32 = {{COLS}};
const N: u32 = {{N}};
const SPLITS: u32 = {{SPLITS}};
const RPS: u32 = {{RPS}}; // rows per split
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let gid = (wid.y * nwg.x + wid.x) * WG + lidx;
  if (gid >= COLS * SPLITS) { return; }
  let c = gid % COLS;
  let r0 = (gid / COLS) * RPS;
  let r1 = min(ROWS, r0 + RPS);
  for (var r = r0; r < r1; r++) { out[r * COLS + c] = 0.0; }
  for (var i = 0u; i < N; i++) {
    let r = idx[i];
    if (r >= i32(r0) && r < i32(r1)) {
      out[u32(r) * COLS + c] += src[i * COLS + c];
    }
  }
}
