// layering.test.ts: the guard of DESIGN.md's dependency direction. It reads the import statements of
// src/**/*.ts and apps/**/*.ts, maps each file to its unit (a top-level folder of src/, or the root
// entry files index.ts and web.ts, or apps/), and checks that every import between units is one the
// table below allows, that the units' import graph has no cycle, and that the CLI and the apps reach
// a layer only through its entry file (src/index.ts, src/web.ts, src/<layer>/index.ts). A new
// top-level folder fails until it is given a row. bench/ and test/ may import internals: not read.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

interface Rule {
  /** Units whose files it may import. */
  readonly may?: readonly string[];
  /** Units it may import only through their entry file. */
  readonly viaEntry?: readonly string[];
}

const BASE = ["core", "tensor", "autograd", "index"];
/** Which unit may import which (DESIGN.md, "Dependency direction"). */
const RULES: Readonly<Record<string, Rule>> = {
  core: {},
  backends: { may: ["core"] },
  // NOTE: tensor reaches a device only through the backend registry, never a particular backend.
  tensor: { may: ["core"], viaEntry: ["backends"] },
  autograd: { may: ["core", "tensor"] },
  // src/index.ts: the public API of the layers below nn (tensors, gradients, backends, jit).
  index: { may: ["core", "backends", "tensor", "autograd"] },
  nn: { may: BASE },
  models: { may: [...BASE, "nn"] },
  serve: { may: [...BASE, "nn", "models"] },
  plan: { may: [...BASE, "nn", "models"] },
  train: { may: [...BASE, "nn", "models"] },
  dist: { may: [...BASE, "nn", "models"] },
  // NOTE: the load generator speaks the OpenAI wire format, whose SSE reader lives in serve (the browser's
  // HTTP client shares it); it never reaches the engine.
  bench_serve: { may: ["core", "index", "serve"] },
  // src/web.ts: the public API for browsers, gathered from the layers' browser-safe files.
  web: { may: [...BASE, "backends", "nn", "models", "serve"] },
  cli: { viaEntry: ["index", "nn", "models", "serve", "plan", "bench_serve", "train", "dist"] },
  apps: { viaEntry: ["web"] },
};

interface Import {
  /** Repository-relative paths, e.g. src/serve/engine.ts. */
  readonly from: string;
  readonly to: string;
}

/** A file's unit: src/<folder>/... -> folder, src/index.ts -> index, src/web.ts -> web, apps/... -> apps. */
function unitOf(path: string): string | undefined {
  const parts = path.split("/");
  if (parts[0] === "apps") return "apps";
  if (parts[0] !== "src" || parts.length < 2) return undefined;
  return parts.length === 2 ? parts[1]!.replace(/\.ts$/, "") : parts[1];
}

/** The entry file of a unit: src/index.ts, src/web.ts, src/<folder>/index.ts. */
function isEntryFile(path: string, unit: string): boolean {
  return path === (unit === "index" || unit === "web" ? `src/${unit}.ts` : `src/${unit}/index.ts`);
}

/** Each import that breaks the rules, as a sentence naming both files and the rule. */
function violations(imports: readonly Import[], rules: Readonly<Record<string, Rule>>): string[] {
  const out: string[] = [];
  for (const { from, to } of imports) {
    const [a, b] = [unitOf(from), unitOf(to)];
    if (a === undefined || b === undefined || a === b) continue;
    const rule = rules[a];
    if (!rule) {
      out.push(`${from}: unit '${a}' has no row in the layering table (add one: what may it import?)`);
      continue;
    }
    if (rule.may?.includes(b)) continue;
    if (rule.viaEntry?.includes(b)) {
      if (!isEntryFile(to, b)) out.push(`${from} imports ${to}: ${a} may reach ${b} only through its entry file`);
      continue;
    }
    out.push(`${from} imports ${to}: ${a} may not import ${b}`);
  }
  return out;
}

/** The unit graph of the imports: unit -> the units it imports. */
function unitGraph(imports: readonly Import[]): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const { from, to } of imports) {
    const [a, b] = [unitOf(from), unitOf(to)];
    if (a === undefined || b === undefined || a === b) continue;
    if (!g.has(a)) g.set(a, new Set());
    g.get(a)!.add(b);
  }
  return g;
}

/** A cycle of the graph as a path that starts and ends at the same unit, or undefined when it has none. */
function findCycle(g: ReadonlyMap<string, ReadonlySet<string>>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (u: string): string[] | undefined => {
    if (state.get(u) === "done") return undefined;
    if (state.get(u) === "open") return [...path.slice(path.indexOf(u)), u];
    state.set(u, "open");
    path.push(u);
    for (const v of [...(g.get(u) ?? [])].sort()) {
      const c = visit(v);
      if (c) return c;
    }
    path.pop();
    state.set(u, "done");
    return undefined;
  };
  for (const u of [...g.keys()].sort()) {
    const c = visit(u);
    if (c) return c;
  }
  return undefined;
}

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    // NOTE: a dist/ folder is build output, except src/dist/, the distributed-training layer.
    if (e.isDirectory()) return e.name === "node_modules" || (e.name === "dist" && path !== "src/dist") ? [] : tsFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import (static, dynamic, export-from, type-only) of the files, resolved to .ts paths. */
function readImports(files: readonly string[]): Import[] {
  return files.flatMap((from) => {
    const info = ts.preProcessFile(readFileSync(join(ROOT, from), "utf8"), true, true);
    return info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith("."))
      .map((spec) => ({ from, to: relative(ROOT, resolve(ROOT, dirname(from), spec.replace(/\?.*$/, ""))).replace(/\.js$/, ".ts") }));
  });
}

const FILES = [...tsFiles("src"), ...tsFiles("apps")];
const IMPORTS = readImports(FILES);

describe("layering of src/ and apps/", () => {
  it("reads the imports it checks (a scan that found none would pass anything)", () => {
    expect(FILES.length).toBeGreaterThan(100);
    const g = unitGraph(IMPORTS);
    // Edges every build has: models build on nn, the apps on web.ts.
    expect(g.get("models")?.has("nn")).toBe(true);
    expect(g.get("apps")?.has("web")).toBe(true);
  });

  it("every unit has a row, and every import between units is one the table allows", () => {
    expect(violations(IMPORTS, RULES)).toEqual([]);
  });

  it("the units' import graph has no cycle", () => {
    expect(findCycle(unitGraph(IMPORTS))).toBeUndefined();
  });
});

describe("the layering checks themselves", () => {
  const fake: Import[] = [
    { from: "src/serve/weight_cache.ts", to: "src/cli/open_model.ts" },
    { from: "src/cli/serve_command.ts", to: "src/serve/engine.ts" },
    { from: "src/cli/serve_command.ts", to: "src/serve/index.ts" },
    { from: "src/tensor/create.ts", to: "src/backends/index.ts" },
    { from: "src/no_such_layer/loop.ts", to: "src/models/llama.ts" },
  ];

  it("name an upward import, an internal reached past an entry file, and a unit without a row", () => {
    expect(violations(fake, RULES)).toEqual([
      "src/serve/weight_cache.ts imports src/cli/open_model.ts: serve may not import cli",
      "src/cli/serve_command.ts imports src/serve/engine.ts: cli may reach serve only through its entry file",
      "src/no_such_layer/loop.ts: unit 'no_such_layer' has no row in the layering table (add one: what may it import?)",
    ]);
  });

  it("find a cycle between folders, and none in a chain", () => {
    expect(findCycle(unitGraph(fake))).toEqual(["cli", "serve", "cli"]);
    expect(findCycle(unitGraph(fake.slice(1)))).toBeUndefined();
  });
});
