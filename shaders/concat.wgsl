// concat.wgsl: out[o, :] = the parts' rows o one after another, for o < OUTER, 32-bit elements copied
// as stored bits (f32, i32, u32). Template filled by src/backends/webgpu/routines.ts.
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //!BINDINGS   one read-only array<u32> per part: `part0` at binding 1, `part1` at binding 2, ...
//   //!COPY       the element's source: `if (c < END_p) { out[gid] = part_p[o * LEN_p + c - START_p]; return; }`
//                 for each part in order.
//
// One invocation per output element: row o = gid / TOTAL, column c = gid % TOTAL. Each element reads only
// its own part (a sum of padded parts would compute every part's index for every element).

const OUTER: u32 = {{OUTER}};
const TOTAL: u32 = {{TOTAL}}; // columns of an output row: the parts' lengths summed
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
//!BINDINGS

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let gid = (wid.y * nwg.x + wid.x) * WG + lidx;
  if (gid >= OUTER * TOTAL) { return; }
  let o = gid / TOTAL;
  let c = gid % TOTAL;
//!COPY
}
