// openai_metrics.test.ts: /metrics in the Prometheus text format. A strict parser of the exposition
// format (HELP/TYPE before samples, label escaping, histogram buckets cumulative with +Inf == _count)
// checks the registry's output and a live server's; the live counters match the requests made (by
// route and status), the latency histograms count every finished engine request, and the engine's
// gauges are there.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, MetricsRegistry } from "../../src/serve/openai/metrics_registry.js";
import type { Served } from "./openai_helpers.js";
import { MODEL, serve } from "./openai_helpers.js";

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface Family {
  type: string;
  help?: string;
  readonly samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_PAIR = `([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL_PAIR}(?:,${LABEL_PAIR})*)?\\})? (\\S+)$`);

function unescape(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
}

function parseValue(v: string): number {
  if (v === "+Inf") return Infinity;
  if (v === "-Inf") return -Infinity;
  if (v === "NaN") return NaN;
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v)) throw new Error(`bad sample value '${v}'`);
  return Number(v);
}

/** Parse exposition text, throwing on anything the format does not allow. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      if (families.get(m[1]!)?.help !== undefined) throw new Error(`second HELP for ${m[1]}`);
      families.set(m[1]!, { ...(families.get(m[1]!) ?? { type: "", samples: [] }), help: m[2]! });
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      const f = families.get(m[1]!);
      if (f?.type || f?.samples.length) throw new Error(`TYPE for ${m[1]} after its samples or twice`);
      families.set(m[1]!, { ...(f ?? { samples: [] }), type: m[2]! });
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      const labels: Record<string, string> = {};
      for (const pair of (m[2] ?? "").matchAll(new RegExp(LABEL_PAIR, "g"))) {
        if (pair[1]! in labels) throw new Error(`label ${pair[1]} twice in: ${line}`);
        labels[pair[1]!] = unescape(pair[2]!);
      }
      const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
      const f = families.get(base);
      if (!f?.type) throw new Error(`sample before its TYPE: ${line}`);
      if (base !== name && f.type !== "histogram" && f.type !== "summary") throw new Error(`suffixed sample of a ${f.type}: ${line}`);
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (seen.has(key)) throw new Error(`duplicate series: ${line}`);
      seen.add(key);
      f.samples.push({ name, labels, value: parseValue(m[m.length - 1]!) });
    } else throw new Error(`not an exposition line: '${line}'`);
  }
  for (const [name, f] of families) if (f.type === "histogram") checkHistogram(name, f);
  return families;
}

function checkHistogram(name: string, f: Family): void {
  const series = new Map<string, Sample[]>();
  for (const s of f.samples.filter((x) => x.name === `${name}_bucket`)) {
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${name}_bucket without le`);
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, buckets] of series) {
    const les = buckets.map((b) => parseValue(b.labels.le!));
    if (les.some((le, i) => i > 0 && le <= les[i - 1]!)) throw new Error(`${name}${key}: le not increasing`);
    if (les.at(-1) !== Infinity) throw new Error(`${name}${key}: no +Inf bucket`);
    if (buckets.some((b, i) => i > 0 && b.value < buckets[i - 1]!.value)) throw new Error(`${name}${key}: buckets not cumulative`);
    const count = f.samples.find((s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key);
    if (count?.value !== buckets.at(-1)!.value) throw new Error(`${name}${key}: +Inf bucket != _count`);
    if (!f.samples.some((s) => s.name === `${name}_sum` && JSON.stringify(s.labels) === key)) throw new Error(`${name}${key}: no _sum`);
  }
}

const value = (fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined =>
  [...fams.values()].flatMap((f) => f.samples).find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the exposition format, escaping label values and help", () => {
    const r = new MetricsRegistry();
    const c = r.register(new Counter("t_requests_total", "Requests.\nSecond line \\ backslash", ["path"]));
    const g = r.register(new Gauge("t_temperature", "A gauge."));
    const h = r.register(new Histogram("t_latency_seconds", "Latency.", [0.1, 1], ["m"]));
    c.inc({ path: 'a"b\\c\nd' });
    c.inc({ path: 'a"b\\c\nd' }, 2);
    g.set({}, -1.5);
    for (const v of [0.05, 0.5, 5]) h.observe({ m: "x" }, v);
    const text = r.render();
    expect(text).toContain('t_requests_total{path="a\\"b\\\\c\\nd"} 3\n');
    expect(text).toContain("# HELP t_requests_total Requests.\\nSecond line \\\\ backslash\n");
    const fams = parseExposition(text);
    expect(value(fams, "t_requests_total", { path: 'a"b\\c\nd' })).toBe(3);
    expect(value(fams, "t_temperature")).toBe(-1.5);
    expect(value(fams, "t_latency_seconds_bucket", { m: "x", le: "0.1" })).toBe(1);
    expect(value(fams, "t_latency_seconds_bucket", { m: "x", le: "1" })).toBe(2);
    expect(value(fams, "t_latency_seconds_bucket", { m: "x", le: "+Inf" })).toBe(3);
    expect(value(fams, "t_latency_seconds_sum", { m: "x" })).toBeCloseTo(5.55, 10);
  });

  it("the test's parser rejects malformed exposition text", () => {
    const head = "# TYPE h histogram\n";
    expect(() => parseExposition("x 1\n")).toThrow(/before its TYPE/);
    expect(() => parseExposition("# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n")).toThrow(/duplicate/);
    expect(() => parseExposition("# TYPE x gauge\nx one\n")).toThrow(/value/);
    expect(() => parseExposition(`${head}h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n`)).toThrow(/cumulative/);
    expect(() => parseExposition(`${head}h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n`)).toThrow(/_count/);
    expect(() => parseExposition("# TYPE x gauge\nx 1")).toThrow(/newline/);
  });

  it("refuses what Prometheus would reject", () => {
    expect(() => new Counter("requests", "no _total")).toThrow(/_total/);
    expect(() => new Gauge("bad-name", "x")).toThrow(/not a valid/);
    expect(() => new Histogram("h", "x", [1, 0.5])).toThrow(/increasing/);
    const c = new Counter("c_total", "x", ["a"]);
    expect(() => c.inc({ b: "1" })).toThrow(/exactly \{a\}/);
    expect(() => c.inc({ a: "1" }, -1)).toThrow(/cannot increase/);
    const r = new MetricsRegistry();
    r.register(new Gauge("g", "x"));
    expect(() => r.register(new Gauge("g", "y"))).toThrow(/twice/);
  });
});

describe("GET /metrics", () => {
  let s: Served;
  beforeAll(async () => {
    s = await serve();
  });
  afterAll(async () => {
    await s?.close();
  });

  it("parses and counts requests, tokens and latencies", async () => {
    const post = (path: string, body: object) => fetch(s.url + path, { method: "POST", body: JSON.stringify(body) }).then((r) => r.text().then(() => r.status));
    expect(await post("/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 5, n: 2 })).toBe(200);
    expect(await post("/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 3, stream: true })).toBe(200);
    expect(await post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4 })).toBe(200);
    expect(await post("/v1/completions", { model: MODEL, prompt: "" })).toBe(400);
    expect(await post("/v1/completions", { model: "nope", prompt: "x" })).toBe(404);

    const r = await fetch(`${s.url}/metrics`);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const fams = parseExposition(await r.text());
    const http = (route: string, status: string) => value(fams, "kiln_http_requests_total", { route, status });
    expect(http("/v1/completions", "200")).toBe(2);
    expect(http("/v1/chat/completions", "200")).toBe(1);
    expect(http("/v1/completions", "400")).toBe(1);
    expect(http("/v1/completions", "404")).toBe(1);
    const m = { model_name: MODEL };
    expect(value(fams, "kiln_request_finished_total", { ...m, finished_reason: "length" })).toBe(4);
    expect(value(fams, "kiln_generation_tokens_total", m)).toBe(5 + 5 + 3 + 4);
    expect(value(fams, "kiln_prompt_tokens_total", m)).toBeGreaterThan(15);
    expect(value(fams, "kiln_time_to_first_token_seconds_count", m)).toBe(4);
    expect(value(fams, "kiln_e2e_request_latency_seconds_count", m)).toBe(4);
    expect(value(fams, "kiln_time_per_output_token_seconds_count", m)).toBe(4);
    expect(value(fams, "kiln_e2e_request_latency_seconds_sum", m)).toBeGreaterThan(value(fams, "kiln_time_to_first_token_seconds_sum", m)!);
    expect(value(fams, "kiln_num_requests_running")).toBe(0);
    expect(value(fams, "kiln_num_requests_waiting")).toBe(0);
    expect(fams.get("kiln_kv_cache_usage_ratio")?.type).toBe("gauge");
  });
});
