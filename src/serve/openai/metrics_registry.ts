// metrics_registry.ts: counters, gauges and histograms with labels, rendered in the Prometheus text
// exposition format (version 0.0.4): `# HELP`, `# TYPE`, one sample per line, histogram buckets
// cumulative with `le` and a `+Inf` bucket, `_sum` and `_count`. It owns the format and escaping; which
// metrics a server has is server_metrics.ts's. NOTE: written here rather than taken from prom-client:
// about a hundred lines, no global registry, and nothing that ties the serve layer to Node-only code.

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: Labels; state: S }>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], private readonly type: string) {
    if (!NAME.test(name)) throw new Error(`metric name '${name}' is not a valid Prometheus name`);
    for (const l of labelNames) if (!LABEL.test(l) || l === "le") throw new Error(`metric ${name}: label name '${l}' is not allowed`);
  }

  protected at(labels: Labels, init: () => S): S {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((l) => typeof labels[l] === "string")) {
      throw new Error(`metric ${this.name}: labels must be exactly {${this.labelNames.join(", ")}}, got {${keys.join(", ")}}`);
    }
    const ordered: Record<string, string> = {};
    for (const l of this.labelNames) ordered[l] = labels[l]!;
    const key = JSON.stringify(ordered);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: ordered, state: init() }));
    return s.state;
  }

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    return head + [...this.series.values()].map(({ labels, state }) => this.samples(labels, state)).join("");
  }

  protected abstract samples(labels: Labels, state: S): string;
}

export class Counter extends Metric<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    if (!name.endsWith("_total")) throw new Error(`counter '${name}' must end in _total`);
    super(name, help, labelNames, "counter");
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name}: cannot increase by ${by}`);
    this.at(labels, () => ({ v: 0 })).v += by;
  }

  protected samples(labels: Labels, s: { v: number }): string {
    return `${this.name}${labelText(labels)} ${formatValue(s.v)}\n`;
  }
}

export class Gauge extends Metric<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, "gauge");
  }

  set(labels: Labels, value: number): void {
    this.at(labels, () => ({ v: 0 })).v = value;
  }

  protected samples(labels: Labels, s: { v: number }): string {
    return `${this.name}${labelText(labels)} ${formatValue(s.v)}\n`;
  }
}

interface HistogramState {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  constructor(name: string, help: string, readonly buckets: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, labelNames, "histogram");
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new Error(`histogram ${name}: buckets must be finite and increasing, got ${buckets.join(", ")}`);
    }
  }

  observe(labels: Labels, value: number): void {
    const s = this.at(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  protected samples(labels: Labels, s: HistogramState): string {
    let cum = 0;
    let out = "";
    this.buckets.forEach((b, i) => {
      cum += s.counts[i]!;
      out += `${this.name}_bucket${labelText(labels, ["le", formatValue(b)])} ${cum}\n`;
    });
    out += `${this.name}_bucket${labelText(labels, ["le", "+Inf"])} ${s.count}\n`;
    return out + `${this.name}_sum${labelText(labels)} ${formatValue(s.sum)}\n${this.name}_count${labelText(labels)} ${s.count}\n`;
  }
}

/** The metrics of one server, rendered in registration order. */
export class MetricsRegistry {
  private readonly metrics: (Counter | Gauge | Histogram)[] = [];

  register<M extends Counter | Gauge | Histogram>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric '${m.name}' is registered twice`);
    this.metrics.push(m);
    return m;
  }

  render(): string {
    return this.metrics.map((m) => m.render()).join("");
  }
}
