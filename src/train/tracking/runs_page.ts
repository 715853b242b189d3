// runs_page.ts: the runs page `kiln runs ui` serves: one self-contained HTML document (no build
// step, no assets) that lists the runs from /api/runs and overlays the chosen runs' curves of one
// metric, drawn by /api/plot.svg. The API is runs_api.ts.

const SCRIPT = `
const $ = (s) => document.querySelector(s);
async function draw() {
  const runs = [...document.querySelectorAll("#runs input:checked")].map((i) => i.value);
  const plot = $("#plot");
  if (runs.length === 0) { plot.textContent = "Choose one or more runs."; return; }
  const q = new URLSearchParams([...runs.map((r) => ["run", r]), ["metric", $("#metric").value], ["log", $("#log").checked ? "1" : "0"]]);
  const res = await fetch("api/plot.svg?" + q);
  if (res.ok) plot.innerHTML = await res.text();
  else plot.textContent = (await res.json()).error;
  document.body.dataset.drawn = String(Number(document.body.dataset.drawn ?? 0) + 1);
}
async function main() {
  const runs = await (await fetch("api/runs")).json();
  const list = $("#runs");
  if (runs.length === 0) list.textContent = "No runs in this database yet.";
  for (const r of runs) {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: r.id, checked: true });
    box.addEventListener("change", draw);
    label.append(box, " " + r.name + " (" + r.id + ") · " + r.status + " · " + r.backend + " · " + new Date(r.created).toISOString().slice(0, 16).replace("T", " "));
    list.append(label);
  }
  const keys = [...new Set(runs.flatMap((r) => r.metrics))].sort();
  for (const k of keys) $("#metric").append(new Option(k, k, false, k === "loss"));
  $("#metric").addEventListener("change", draw);
  $("#log").addEventListener("change", draw);
  if (runs.length > 0) await draw();
}
main().catch((e) => { $("#plot").textContent = "Could not load the runs: " + e.message; });
`;

export function runsPageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kiln runs</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: sans-serif; margin: 1.5rem; color: #222; }
  #runs label { display: block; margin: 0.2rem 0; }
  .controls { margin: 1rem 0; }
  #plot svg { max-width: 100%; height: auto; border: 1px solid #eee; }
</style>
</head>
<body>
<h1>kiln runs</h1>
<div id="runs"></div>
<div class="controls">
  <label>metric <select id="metric"></select></label>
  <label><input type="checkbox" id="log"> log scale</label>
</div>
<div id="plot"></div>
<script type="module">${SCRIPT}</script>
</body>
</html>
`;
}
