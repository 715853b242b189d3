// backend_choice.test.ts: auto-selection with its reasons (chooseBackend), in this process: where
// Dawn's only adapter is SwiftShader, webgpu is passed over as software without a device being made;
// where Vulkan has no driver, webgpu is passed over with kiln's reason; cuda is not built; a named
// backend is taken as asked. backendLine prints each case on one line. The spawned commands' stderr
// is quiet_start.test.ts's.

import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { backendLine } from "../../src/cli/backend_line.js";
import { chooseBackend } from "../../src/index.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";

const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
const saved = process.env.VK_ICD_FILENAMES;
afterEach(() => {
  if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
  else process.env.VK_ICD_FILENAMES = saved;
});

// NOTE: the order matters: an adapter found is remembered for the process (a failure is not), so the
// case without a driver runs before the one with SwiftShader.
describe("chooseBackend", () => {
  it("auto passes over cuda (addon not built, or no NVIDIA driver) and webgpu (no Vulkan driver), with the reasons", async () => {
    // NOTE: Dawn is asked in a child process, which reads this process's environment as it is now.
    process.env.VK_ICD_FILENAMES = "/nonexistent/kiln_icd.json";
    const sel = await chooseBackend("auto");
    expect(sel.backend.name).toBe("cpu");
    expect(sel.passedOver).toEqual([
      { name: "cuda", reason: expect.stringMatching(/^(not built yet|no NVIDIA driver)/) },
      { name: "webgpu", reason: "the Vulkan loader found no driver; VK_ICD_FILENAMES=/nonexistent/kiln_icd.json does not exist" },
    ]);
    expect(backendLine(sel, undefined)).toMatch(/^backend: cpu \(JavaScript on .*\), chosen by auto; cuda: (not built yet|no NVIDIA driver).*; webgpu: the Vulkan loader found no driver; /);
  });

  it.skipIf(!existsSync(SWIFTSHADER))(`auto ranks a software adapter (SwiftShader) below cpu${skipLabel(existsSync(SWIFTSHADER) ? undefined : missingReason("chromium", `${SWIFTSHADER} not found`))}`, async () => {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER;
    const sel = await chooseBackend("auto");
    expect(sel.backend.name).toBe("cpu");
    expect(sel.passedOver[1]).toEqual({ name: "webgpu", reason: expect.stringMatching(/^only a software adapter \(SwiftShader.*\), which ranks below cpu$/) });
  });

  it("a named backend is taken as asked, with nothing passed over", async () => {
    const sel = await chooseBackend("cpu");
    expect(sel).toMatchObject({ backend: { name: "cpu" }, passedOver: [] });
    expect(backendLine(sel, "--backend cpu")).toMatch(/^backend: cpu \(JavaScript on .*\), as --backend cpu asked$/);
    await expect(chooseBackend("cuda")).rejects.toThrow(/cuda: (not built yet|no NVIDIA driver)/);
  });
});
