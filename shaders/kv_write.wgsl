// kv_write.wgsl: cache[slots[i], :] = values[i, :] for i < ROWS, in place, with the cache (NUM_SLOTS, ROW)
// and values (ROWS, ROW) of one dtype, copied as stored bits (no conversion, NaN payloads kept).
// Template filled by src/backends/webgpu/routines.ts.
//
// Placeholders:
//   {{ NAME }}    (written without the spaces) a WGSL literal, see the constants below.
//   //#if HALVES ... //#else ... //#endif   packed f16/bf16 rows of odd length (they start and end
//                 mid-word), else whole words: f32, or packed rows of even length (word-aligned).
//
// Bindings: slot 0 is the cache, read and written (the backend does not bind slot 1, the cache operand,
// which is the same buffer), slot 2 the i32 slots, slot 3 the values.
// One invocation per destination word of a row: (row i, word w) with gid = i * WPR + w.
// A slot < 0 skips its row (a padding token). NOTE: a GPU cannot throw, so a slot >= NUM_SLOTS skips its
// row too (the cpu routine throws there). Two rows with one slot race: which row's elements land is
// unspecified (the cpu routine keeps the last).

const ROWS: u32 = {{ROWS}};
const ROW: u32 = {{ROW}}; // elements per row
const NUM_SLOTS: u32 = {{NUM_SLOTS}};
const WPR: u32 = {{WPR}}; // destination words per row
const WG: u32 = 256u;

//#if HALVES
// NOTE: the first and last words of a row of odd length hold an element of the neighbouring slot's row,
// which another invocation may be writing: those halves go with atomicAnd + atomicOr, which touch only
// their own 16 bits; words a row owns whole go with one atomicStore.
@group(0) @binding(0) var<storage, read_write> cache: array<atomic<u32>>;
// The 16 bits of packed element k of the values.
fn half_bits(k: u32) -> u32 {
  return (vals[k >> 1u] >> ((k & 1u) * 16u)) & 0xffffu;
}
//#else
@group(0) @binding(0) var<storage, read_write> cache: array<u32>;
//#endif
@group(0) @binding(2) var<storage, read> slots: array<i32>;
@group(0) @binding(3) var<storage, read> vals: array<u32>;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let gid = (wid.y * nwg.x + wid.x) * WG + lidx;
  if (gid >= ROWS * WPR) { return; }
  let i = gid / WPR;
  let w = gid % WPR;
  let slot = slots[i];
  if (slot < 0 || u32(slot) >= NUM_SLOTS) { return; }
//#if HALVES
  // The row covers elements [a, a + ROW) of the cache: words a / 2 .. (a + ROW - 1) / 2, which are
  // (ROW + 1) / 2 = WPR words whether a is even or odd.
  let a = u32(slot) * ROW;
  let word = a / 2u + w;
  let lo = 2u * word; // the cache element in the word's low half
  let src = i * ROW; // the row's first element in the values
  if (lo < a) {
    // Only the high half is this row's: its first element.
    atomicAnd(&cache[word], 0x0000ffffu);
    atomicOr(&cache[word], half_bits(src) << 16u);
  } else if (lo + 1u >= a + ROW) {
    // Only the low half is this row's: its last element.
    atomicAnd(&cache[word], 0xffff0000u);
    atomicOr(&cache[word], half_bits(src + ROW - 1u));
  } else {
    let k = src + lo - a;
    atomicStore(&cache[word], half_bits(k) | (half_bits(k + 1u) << 16u));
  }
//#else
  cache[u32(slot) * WPR + w] = vals[i * WPR + w];
//#endif
}
