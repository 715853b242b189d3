// openai_static.test.ts: `kiln serve` serves the built browser app at / and answers pages from other
// origins (CORS), over a real server: files from the static folder with their content types, / as
// index.html, /bench as bench.html, HEAD, no path that escapes the folder, the "not built" page, and
// preflight plus Access-Control-Allow-Origin on the API, and the COOP/COEP headers that isolate the page.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { get } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Served } from "./openai_helpers.js";
import { serve } from "./openai_helpers.js";

let s: Served;
let missing: Served;
const dir = mkdtempSync(join(tmpdir(), "kiln-static-"));

beforeAll(async () => {
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>demo</title>");
  writeFileSync(join(dir, "bench.html"), "<!doctype html><title>bench</title>");
  writeFileSync(join(dir, "assets", "main-abc.js"), "console.log(1)");
  writeFileSync(join(dir, "..", "kiln-static-secret.txt"), "TOP-SECRET-CONTENT");
  s = await serve({ staticDir: dir });
  missing = await serve({ staticDir: join(dir, "no-such-dir") });
});

afterAll(async () => {
  await s?.close();
  await missing?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(dir, "..", "kiln-static-secret.txt"), { force: true });
});

function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    get({ hostname, port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d)).on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

describe("the built web app", () => {
  it("is served at / and by file name, with content types", async () => {
    const root = await fetch(`${s.url}/`);
    expect(root.status).toBe(200);
    expect(root.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await root.text()).toContain("<title>demo</title>");
    const js = await fetch(`${s.url}/assets/main-abc.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(js.headers.get("cache-control")).toContain("immutable");
    // Cross-origin isolation (SharedArrayBuffer, so the cpu backend may run threads in the page), on every file.
    for (const r of [root, js]) {
      expect(r.headers.get("cross-origin-opener-policy")).toBe("same-origin");
      expect(r.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
    }
    expect(await (await fetch(`${s.url}/bench`)).text()).toContain("<title>bench</title>");
    const head = await fetch(`${s.url}/bench.html`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(10);
  });

  it("never serves a file outside the folder, and unknown paths are 404 in OpenAI's shape", async () => {
    // NOTE: node:http sends the path as written; fetch would normalize the dots away before sending.
    for (const path of ["/../kiln-static-secret.txt", "/%2e%2e/kiln-static-secret.txt", "/assets/..%2f..%2fkiln-static-secret.txt", "/nope.js"]) {
      const { status, body } = await rawGet(s.url, path);
      expect(status, path).toBe(404);
      expect(body).not.toContain("TOP-SECRET-CONTENT");
    }
  });

  it("leaves the API alone: /v1 and /health still answer, POST to a page is 405", async () => {
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(200);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.url}/index.html`, { method: "POST" })).status).toBe(405);
  });

  it("says how to build it when the folder is missing", async () => {
    const res = await fetch(`${missing.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("npm run build:web");
    expect((await fetch(`${missing.url}/bench.html`)).status).toBe(404);
  });
});

describe("CORS", () => {
  it("answers a preflight and marks API responses for any origin", async () => {
    const pre = await fetch(`${s.url}/v1/completions`, {
      method: "OPTIONS",
      headers: { Origin: "http://127.0.0.1:4173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const res = await fetch(`${s.url}/v1/models`, { headers: { Origin: "http://127.0.0.1:4173" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect((await fetch(`${s.url}/v1/models`)).headers.get("access-control-allow-origin")).toBeNull();
  });
});
