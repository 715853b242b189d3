// bench_worker.ts: the kernel benchmark suite (bench/lib/suite.ts, the same code as the Node CLI) in a
// module Worker, so the page stays responsive while kernels run. It starts the backend asked for (cpu
// instead when WebGPU cannot start, saying why), streams each row to the page and returns the run.
import * as Comlink from "comlink";
import type { Backend } from "../../../../src/web.js";
import { getBackend } from "../../../../src/web.js";
import { PROFILES, benchCases } from "../../../../bench/lib/cases.js";
import { isSoftwareGpu, profileFor, runSuite } from "../../../../bench/lib/suite.js";
import { FULL_POLICY, QUICK_POLICY } from "../../../../bench/lib/timing.js";
import { installShaders } from "../shaders.js";
import { browserMachineInfo } from "./browser_machine.js";
import type { BenchRunOptions, BenchStarted, BenchWorkerApi } from "./bench_protocol.js";

installShaders();

let running = false;

async function start(choice: BenchRunOptions["backend"]): Promise<{ backend: Backend; fallbackReason?: string }> {
  if (choice === "cpu") return { backend: await getBackend("cpu") };
  try {
    return { backend: await getBackend("webgpu") };
  } catch (err) {
    return { backend: await getBackend("cpu"), fallbackReason: (err as Error).message };
  }
}

const api: BenchWorkerApi = {
  async run(opts, onStarted, onResult) {
    if (running) throw new Error("a benchmark run is already in progress in this page");
    running = true;
    // NOTE: comlink delivers callbacks on the proxies' own ports, so the reply could overtake the last
    // rows: the run answers only once every callback has reached the page.
    const sent: unknown[] = [];
    try {
      const { backend, fallbackReason } = await start(opts.backend);
      // NOTE: a quick run on a software GPU (SwiftShader) gets the smallest sizes that still draw lines;
      // the software profile takes ~40 s even quick. Everything else is what the Node CLI would run.
      const profile = opts.quick && isSoftwareGpu(backend) ? PROFILES["browser-smoke"] : profileFor(backend);
      const cases = benchCases(profile, backend);
      const expectedRows = cases.reduce((n, c) => n + (c.hasRoutine ? 2 : 1), backend.name === "cpu" ? 1 : 0);
      const started: BenchStarted = { backend: backend.info, profile: profile.name, expectedRows, ...(fallbackReason ? { fallbackReason } : {}) };
      sent.push(onStarted(started));
      return await runSuite(backend, {
        profile, policy: opts.quick ? QUICK_POLICY : FULL_POLICY, quick: opts.quick,
        machine: browserMachineInfo(backend.info), onResult: (c) => void sent.push(onResult(c)),
      });
    } finally {
      await Promise.allSettled(sent);
      running = false;
    }
  },
};

Comlink.expose(api);
