// The cpu backend's thread count: physical cores from a /sys-like tree (hyperthread siblings counted once,
// offline CPUs skipped), the --threads flag of kiln generate (a bad value named, the count on the backend
// line, the same greedy text on 1 and 2 threads) and of kiln serve's flag parsing.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { linuxPhysicalCores, parseThreadCount, requestedThreadCount, setThreadCount } from "../../src/backends/cpu/thread_count.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fake /sys/devices/system/cpu: [core_id, package_id, online] per cpuN. */
function fakeSys(cpus: [number, number, boolean][]): string {
  const root = mkdtempSync(join(tmpdir(), "kiln-sys-"));
  dirs.push(root);
  cpus.forEach(([core, pkg, online], i) => {
    mkdirSync(join(root, `cpu${i}`, "topology"), { recursive: true });
    writeFileSync(join(root, `cpu${i}`, "topology", "core_id"), `${core}\n`);
    writeFileSync(join(root, `cpu${i}`, "topology", "physical_package_id"), `${pkg}\n`);
    if (i > 0) writeFileSync(join(root, `cpu${i}`, "online"), online ? "1\n" : "0\n");
  });
  mkdirSync(join(root, "cpufreq")); // not a cpuN entry
  return root;
}

const env = (extra: Record<string, string>) => {
  const e = { ...process.env, ...extra };
  delete e.KILN_CPU_THREADS;
  delete e.KILN_THREADS;
  return { ...e, ...extra, KILN_BACKEND: "cpu" };
};

describe("cpu thread count", () => {
  it("counts physical cores: hyperthread siblings once, per package, offline CPUs not at all", () => {
    // 2 packages x 2 cores x 2 threads, the last sibling offline.
    const sys = fakeSys([[0, 0, true], [1, 0, true], [0, 0, true], [1, 0, true], [0, 1, true], [1, 1, true], [0, 1, true], [1, 1, false]]);
    expect(linuxPhysicalCores(sys)).toBe(4);
    expect(linuxPhysicalCores(fakeSys([[0, 0, true], [0, 0, true]]))).toBe(1);
    expect(linuxPhysicalCores(join(tmpdir(), "kiln-no-such-dir"))).toBeUndefined();
  });

  it("parses a count and names what gave a bad one", () => {
    expect(parseThreadCount("3", "--threads")).toBe(3);
    for (const bad of ["", "0", "-1", "2.5", "two", "257"]) expect(() => parseThreadCount(bad, "--threads")).toThrow(`--threads must be an integer from 1 to 256, got ${JSON.stringify(bad)}`);
  });

  it("kiln generate --threads: a bad value is a usage error; 1 and 2 threads print the same greedy text and say their count", async () => {
    const gen = (threads: string) => runProcess(process.execPath, [KILN_BIN, "generate", "--prompt", "Once upon a time", "--max-tokens", "24", "--temperature", "0", "--threads", threads], { env: env({}), timeoutMs: 50_000 });
    const [bad, one, two, serveBad] = await Promise.all([
      gen("0"), gen("1"), gen("2"),
      runProcess(process.execPath, [KILN_BIN, "serve", "--threads", "many", "--port", "0"], { env: env({}), timeoutMs: 50_000 }),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--threads must be an integer from 1 to 256, got "0"');
    expect(serveBad.code).toBe(2);
    expect(serveBad.stderr).toContain('--threads must be an integer from 1 to 256, got "many"');
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(one.stderr).toMatch(/backend: cpu \(JavaScript on .*, 1 thread\)/);
    expect(two.stderr).toMatch(/backend: cpu \(JavaScript on .*, 2 threads\)/);
    expect(one.stdout.length).toBeGreaterThan("Once upon a time".length + 20);
    expect(two.stdout).toBe(one.stdout);
  }, 60_000);

  it("setThreadCount (a browser page's ?threads=) comes before KILN_THREADS, names a bad value, and is fixed once read", () => {
    expect(() => setThreadCount("zero", "the threads URL parameter")).toThrow('the threads URL parameter must be an integer from 1 to 256, got "zero"');
    setThreadCount(3);
    expect(requestedThreadCount()).toBe(3);
    setThreadCount("3");
    expect(() => setThreadCount(2)).toThrow("threads: the cpu backend already runs on 3 threads; set the count before it starts");
    expect(requestedThreadCount()).toBe(3);
  });
});
