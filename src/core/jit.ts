// jit.ts: capture one step's launches and replay them with new inputs. Capture runs the step once
// through realize with a recorder; replay swaps the input buffers into the recorded launch list and
// enqueues it again: no graph building, scheduling, compiling or allocation per call.
// It does not know about Tensors (tensor/jit.ts wraps it for users).
// A step with collectives (collectives.ts) records them as host entries; its replay awaits each in its
// place and so returns a promise. A step without any replays synchronously, as before.

import type { Backend, DeviceBuffer, Executable } from "./backend.js";
import type { Node } from "./graph.js";
import type { LaunchRecorder } from "./realize.js";
import { addToProfile, profilingLaunches, timedLaunch } from "./launch_profile.js";

type Launch =
  | { readonly exe: Executable; readonly bufs: DeviceBuffer[]; readonly host?: undefined }
  | { readonly exe?: undefined; readonly host: { readonly name: string; readonly run: (bufs: readonly DeviceBuffer[]) => Promise<void> }; readonly bufs: DeviceBuffer[] };

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

  private hosts = 0;

  launch(exe: Executable, bufs: readonly DeviceBuffer[], owners: readonly Node[]): void {
    this.launches.push({ exe, bufs: [...bufs] });
    for (const n of owners) this.owners.add(n);
  }
  host(name: string, run: (bufs: readonly DeviceBuffer[]) => Promise<void>, bufs: readonly DeviceBuffer[], owners: readonly Node[]): void {
    this.launches.push({ host: { name, run }, bufs: [...bufs] });
    this.hosts++;
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

  /** Synchronous (void) unless the step holds collectives: then a promise of the whole replay. */
  replay(inputs: readonly DeviceBuffer[]): void | Promise<void> {
    inputs.forEach((buf, k) => {
      for (const [i, j] of this.inputSlots[k]!) this.launches[i]!.bufs[j] = buf;
    });
    if (this.hosts > 0) return this.replayWithHostWork();
    if (profilingLaunches()) for (const l of this.launches) timedLaunch(this.backend, l.exe!, l.bufs);
    else for (const l of this.launches) this.backend.launch(l.exe!, l.bufs);
  }

  private async replayWithHostWork(): Promise<void> {
    const profile = profilingLaunches();
    for (const l of this.launches) {
      if (l.host) {
        const t0 = performance.now();
        await l.host.run(l.bufs);
        if (profile) addToProfile(l.host.name, performance.now() - t0);
      } else if (profile) timedLaunch(this.backend, l.exe!, l.bufs);
      else this.backend.launch(l.exe!, l.bufs);
    }
  }

  dispose(): void {
    for (const b of this.kept) this.backend.free(b);
    this.kept.length = 0;
    this.launches.length = 0;
    this.hosts = 0;
    this.owners.clear();
  }
}
