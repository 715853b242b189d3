// npm_package.test.ts: kiln as a user gets it from npm. `npm pack` (which builds dist/ and the web app
// through prepack) makes the tarball, `npm install` puts it in an empty project, and there, with no
// TypeScript loader and no access to this repository's sources: plain Node imports the API, `npx kiln
// generate` prints the bundled model's greedy text, Vite bundles the `kiln/web` entry with no Node
// built-in in the graph, and tsc type-checks a file that uses both entries from their declarations.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ran } from "../helpers/kiln_cli.js";
import { runProcess } from "../helpers/kiln_cli.js";
import { npmMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { REPO } from "./helpers.js";

const VITE = join(REPO, "node_modules", "vite", "bin", "vite.js");
const TSC = join(REPO, "node_modules", "typescript", "bin", "tsc");
/** llama2.c's greedy continuation of the prompt (models/stories260K/PROVENANCE.md). */
const GREEDY_START = "Once upon a time, there was a little girl named Lily";
const SHADERS = readdirSync(join(REPO, "shaders")).filter((f) => f.endsWith(".wgsl")).map((f) => f.slice(0, -".wgsl".length));

const noNpm = npmMissing();

// NOTE: under `npm test`, npm hands its own settings to the children as npm_* variables (the repository
// as local prefix among them); the npm run here must see only the project it is pointed at.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));

/** `cmd` in `cwd` with this test's environment (no npm_* variables). */
const run = (cmd: string, args: readonly string[], cwd: string): Promise<Ran> => runProcess(cmd, args, { env, cwd });

/** Like run, but a non-zero exit is an error that carries the command's output. */
async function must(cmd: string, args: readonly string[], cwd: string): Promise<Ran> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** What a copy of the repository for packing leaves out: installs, builds and run output. */
const NOT_COPIED = new Set(["node_modules", ".git", "dist", "apps/web/dist", "test/artifacts", "runs"]);

describe.skipIf(!!noNpm)(`the packed npm package in an empty project${skipLabel(noNpm)}`, () => {
  const scratch = mkdtempSync(join(tmpdir(), "kiln-npm-package-"));
  const project = join(scratch, "project");
  const installed = join(project, "node_modules", "kiln");
  const timings: Record<string, number> = {};

  async function timed<T>(what: string, work: Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await work;
    timings[what] = Math.round(performance.now() - t0);
    return out;
  }

  beforeAll(async () => {
    // NOTE: packed from a copy: prepack rebuilds dist/ and apps/web/dist, and doing that in the repository
    // would overwrite a developer's build, and could pull apps/web/dist from under a `kiln serve` running meanwhile.
    const copy = join(scratch, "repo");
    cpSync(REPO, copy, { recursive: true, filter: (src) => !NOT_COPIED.has(relative(REPO, src)) });
    symlinkSync(join(REPO, "node_modules"), join(copy, "node_modules"), "dir");
    await timed("npm pack", must("npm", ["pack", "--pack-destination", scratch], copy));
    const tarballs = readdirSync(scratch).filter((f) => f.endsWith(".tgz"));
    expect(tarballs).toHaveLength(1);
    // NOTE: the runtime dependencies are in npm's cache after the repository's own `npm ci`; the network is the fallback.
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "kiln-user", private: true, type: "module" }));
    await timed("npm install", must("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--omit=optional", join(scratch, tarballs[0]!)], project));
  }, 300_000);

  afterAll(() => {
    console.log(`npm package test timings (ms): ${JSON.stringify(timings)}`);
    rmSync(scratch, { recursive: true, force: true });
  });

  it("ships the built JavaScript, its declarations and the data files, and no TypeScript sources", () => {
    const pkg = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { version: string };
    expect(pkg.version).toBe((JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version);
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/web.js", "dist/web.d.ts", "dist/cli/main.js", "bin/kiln.mjs",
      "models/stories260K/stories260K.bin", "models/stories260K/tok512.bin", "apps/web/dist/index.html", "apps/web/dist/bench.html"]) {
      expect(existsSync(join(installed, f)), f).toBe(true);
    }
    expect(readdirSync(join(installed, "shaders")).sort()).toEqual(SHADERS.map((n) => `${n}.wgsl`).sort());
    // The CUDA sources, so `node node_modules/kiln/cuda/build.mjs` builds the addon and routines where nvcc is; never a local build.
    for (const f of ["cuda/build.mjs", "cuda/binding.gyp", "cuda/src/kiln_cuda.cc", "cuda/routines/common.cuh", "cuda/routines/attention.cu"]) expect(existsSync(join(installed, f)), f).toBe(true);
    expect(existsSync(join(installed, "cuda", "build"))).toBe(false);
    expect(existsSync(join(installed, "src"))).toBe(false);
    expect(existsSync(join(installed, "test"))).toBe(false);
  });

  it("imports the API in plain Node and computes with it", async () => {
    const script = `import { matmul, tensor } from "kiln";
import { Engine } from "kiln/web";
const a = tensor([[1, 2], [3, 4]]);
console.log(JSON.stringify({ from: import.meta.resolve("kiln"), web: typeof Engine, product: await matmul(a, a).toArray() }));`;
    const r = await timed("node import", must(process.execPath, ["--input-type=module", "-e", script], project));
    const out = JSON.parse(r.stdout) as { from: string; web: string; product: number[][] };
    expect(out.from).toBe(`file://${installed}/dist/index.js`);
    expect(out.web).toBe("function");
    expect(out.product).toEqual([[7, 10], [15, 22]]);
  });

  it("runs `npx kiln generate` without tsx, on the model bundled in the package", async () => {
    const r = await timed("npx kiln generate", must("npx", ["--no", "--", "kiln", "generate", "--prompt", "Once upon a time",
      "--temperature", "0", "--max-tokens", "20", "--backend", "cpu"], project));
    expect(r.stdout.startsWith(GREEDY_START)).toBe(true);
    expect(r.stderr).toContain(join(installed, "models", "stories260K", "stories260K.bin"));
    expect(existsSync(join(project, "node_modules", "tsx"))).toBe(false);
  });

  it("bundles the kiln/web entry, its shaders and model with Vite, with no Node built-in or Dawn in the module graph", async () => {
    writeFileSync(join(project, "index.html"), `<!doctype html><script type="module" src="./main.js"></script>\n`);
    // What a web app does (apps/web/src/shaders.ts and main.ts): the WGSL texts bundled, the model a file next to the page.
    const shaders = SHADERS.map((name) => `import ${name} from "kiln/shaders/${name}.wgsl?raw";`).join("\n");
    writeFileSync(join(project, "main.js"), `import { Engine, setShaderTexts, tensor } from "kiln/web";
import modelUrl from "kiln/models/stories260K/stories260K.bin?url";
${shaders}
setShaderTexts({ ${SHADERS.join(", ")} });
console.log(Engine, modelUrl, await tensor([1, 2]).toArray());
`);
    // NOTE: Vite would only warn and stub a Node built-in in a browser build; this plugin makes one an error naming its importer.
    writeFileSync(join(project, "vite.config.mjs"), `const forbidden = /^(node:|fs$|os$|path$|url$|child_process$|worker_threads$|webgpu$)/;
export default {
  logLevel: "warn",
  build: { target: "es2022", assetsInlineLimit: 0 },
  plugins: [{ name: "no-node", enforce: "pre", resolveId(id, importer) { if (forbidden.test(id)) this.error(importer + " imports " + id); return null; } }],
};
`);
    await timed("vite build", must(process.execPath, [VITE, "build"], project));
    const assets = join(project, "dist", "assets");
    const files = readdirSync(assets);
    const js = files.filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(assets, f), "utf8")).join("\n");
    // kiln's code is in the bundle (this message is setShaderTexts's), and so is each shader's text.
    expect(js).toContain("setShaderTexts: shaders/");
    for (const name of SHADERS) expect(js, name).toContain(readFileSync(join(REPO, "shaders", `${name}.wgsl`), "utf8").split("\n")[0]!);
    expect(files.some((f) => /^stories260K-.*\.bin$/.test(f))).toBe(true);
    // Nothing loads a Node module at run time.
    expect(js).not.toMatch(/(import|from)\s*\(?\s*["'`]node:/);
  });

  it("type-checks a user's file against the declarations of both entries", async () => {
    writeFileSync(join(project, "check.ts"), `import { tensor, type Tensor } from "kiln";
import { Engine, type EngineOptions } from "kiln/web";
const t: Tensor = tensor([1, 2]);
export const used: [Tensor, typeof Engine, EngineOptions | undefined] = [t, Engine, undefined];
// @ts-expect-error: the declarations are real types, so a wrong argument is an error
tensor("not a tensor");
`);
    const r = await timed("tsc", run(process.execPath, [TSC, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
      "--target", "es2022", "--lib", "es2023,dom", "check.ts"], project));
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
