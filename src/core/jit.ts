// jit.ts: capture one step's launches and replay them with new inputs. Capture runs the step once
// through realize with a recorder; replay swaps the input buffers into the recorded launch list and
// enqueues it again: no graph building, scheduling, compiling or allocation per call.
// It does not know about Tensors (tensor/jit.ts wraps it for users).

import type { Backend, DeviceBuffer, Executable } from "./backend.js";
import type { Node } from "./graph.js";
import type { LaunchRecorder } from "./realize.js";
import { profilingLaunches, timedLaunch } from "./launch_profile.js";

interface Launch {
  readonly exe: Executable;
  readonly bufs: DeviceBuffer[];
}

export class CapturedStep implements LaunchRecorder {
  private readonly launches: Launch[] = [];
  private readonly kept: DeviceBuffer[] = [];
  /**
   * Every node whose buffer a recorded launch binds (weights, constants made inside the step, outputs).
   * NOTE: holding them keeps the garbage collector from freeing a buffer the replay still binds.
   */
  private readonly owners = new Set<Node>();
  /** (launch, slot) positions where each input buffer was bound. */
  private inputSlots: [number, number][][] = [];

  constructor(private readonly backend: Backend) {}

  launch(exe: Executable, bufs: readonly DeviceBuffer[], owners: readonly Node[]): void {
    this.launches.push({ exe, bufs: [...bufs] });
    for (const n of owners) this.owners.add(n);
  }
  keep(buf: DeviceBuffer): void {
    this.kept.push(buf);
  }

  /** After capture: remember where the inputs were bound, so replay can bind new ones there. */
  bindInputs(inputs: readonly DeviceBuffer[]): void {
    // Replay binds new inputs in their place: the first call's inputs need not be kept alive.
    for (const n of this.owners) if (n.buffer && inputs.includes(n.buffer)) this.owners.delete(n);
    this.inputSlots = inputs.map((buf) => {
      const at: [number, number][] = [];
      this.launches.forEach((l, i) => l.bufs.forEach((b, j) => b === buf && at.push([i, j])));
      return at;
    });
  }

  get numLaunches(): number {
    return this.launches.length;
  }

  replay(inputs: readonly DeviceBuffer[]): void {
    inputs.forEach((buf, k) => {
      for (const [i, j] of this.inputSlots[k]!) this.launches[i]!.bufs[j] = buf;
    });
    if (profilingLaunches()) for (const l of this.launches) timedLaunch(this.backend, l.exe, l.bufs);
    else for (const l of this.launches) this.backend.launch(l.exe, l.bufs);
  }

  dispose(): void {
    for (const b of this.kept) this.backend.free(b);
    this.kept.length = 0;
    this.launches.length = 0;
    this.owners.clear();
  }
}
