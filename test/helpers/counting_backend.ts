// The cpu backend, counting what the core asks of it (allocations, compiles, launches): for tests that
// check that a replayed (jit) step compiles and allocates nothing and launches exactly what it captured.

import type { Backend, DeviceBuffer, Executable } from "../../src/core/backend.js";
import { CpuBackend } from "../../src/backends/cpu/backend.js";

export class CountingBackend extends CpuBackend {
  allocs = 0;
  compiles = 0;
  launches = 0;
  override alloc(n: number) { this.allocs++; return super.alloc(n); }
  override async compile(k: Parameters<Backend["compile"]>[0]) { this.compiles++; return super.compile(k); }
  override launch(e: Executable, b: readonly DeviceBuffer[], s?: readonly number[]) { this.launches++; super.launch(e, b, s); }
}
