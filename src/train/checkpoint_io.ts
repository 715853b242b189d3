// checkpoint_io.ts: the minimal checkpoint of a training run, behind a small interface
// (CheckpointStore) that the robust store of train/checkpoint/ (temporary names, fsync, sha256
// manifest, keep-last-N) replaces. A checkpoint is a directory:
//   model.safetensors      the weights by their model names (f32), loadable like any safetensors model;
//   optimizer.safetensors  AdamW's m and v, each one flat array in the parameters' layout;
//   trainer.json           the step, the layout (names, shapes, offsets) and whatever the caller adds (config).
// Loading checks sizes against the layout; Trainer.loadState checks the layout against the model.

import type { TrainState } from "./trainer.js";
import { readSafetensorsHeader, writeSafetensors } from "../models/formats/safetensors.js";
import type { SafetensorsOut } from "../models/formats/safetensors.js";
import { requireNodeBuiltin } from "../core/host.js";

export interface CheckpointStore {
  save(dir: string, state: TrainState, extra?: Record<string, unknown>): Promise<void>;
  load(dir: string): Promise<{ state: TrainState; extra: Record<string, unknown> }>;
}

// NOTE: a plain join (no node:path): the store may run where only fs is handed out (core/host.ts).
const join = (dir: string, file: string) => `${dir.replace(/\/+$/, "")}/${file}`;
const f32Bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const FORMAT = "kiln-train-v1";

/** The plain directory store described above. */
export const directoryCheckpoints: CheckpointStore = {
  async save(dir, state, extra = {}) {
    const fs = requireNodeBuiltin("node:fs", "saving a checkpoint");
    fs.mkdirSync(dir, { recursive: true });
    const model: SafetensorsOut[] = state.layout.map((s) => ({
      name: s.name, dtype: "F32", shape: s.shape,
      bytes: () => f32Bytes(state.params.subarray(s.offset, s.offset + s.shape.reduce((a, b) => a * b, 1))),
    }));
    writeSafetensors(join(dir, "model.safetensors"), model);
    const flat = (name: string, a: Float32Array): SafetensorsOut => ({ name, dtype: "F32", shape: [a.length], bytes: () => f32Bytes(a) });
    writeSafetensors(join(dir, "optimizer.safetensors"), [flat("adamw.m", state.adamw.m), flat("adamw.v", state.adamw.v)]);
    const json = { format: FORMAT, step: state.step, adamwStep: state.adamw.step, layout: state.layout, extra };
    fs.writeFileSync(join(dir, "trainer.json"), JSON.stringify(json, null, 1));
  },

  async load(dir) {
    const fs = requireNodeBuiltin("node:fs", "loading a checkpoint");
    const jsonPath = join(dir, "trainer.json");
    if (!fs.existsSync(jsonPath)) throw new Error(`checkpoint ${dir}: no trainer.json (not a kiln training checkpoint)`);
    const json = JSON.parse(fs.readFileSync(jsonPath, "utf8")) as { format?: string; step: number; adamwStep: number; layout: TrainState["layout"]; extra?: Record<string, unknown> };
    if (json.format !== FORMAT) throw new Error(`checkpoint ${jsonPath}: format '${json.format}', expected '${FORMAT}'`);
    const size = json.layout.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const tensorsOf = (file: string) => {
      const p = join(dir, file);
      const header = readSafetensorsHeader(p);
      const bytes = fs.readFileSync(p);
      return new Map(header.tensors.map((t) => {
        if (t.dtype !== "F32") throw new Error(`checkpoint ${p}: '${t.name}' is ${t.dtype}, expected F32`);
        return [t.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + t.nbytes))] as const;
      }));
    };
    const model = tensorsOf("model.safetensors");
    const params = new Float32Array(size);
    for (const s of json.layout) {
      const t = model.get(s.name);
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (!t || t.length !== n) throw new Error(`checkpoint ${dir}: model.safetensors ${t ? `has ${t.length} values for` : "lacks"} '${s.name}' (${n} expected)`);
      params.set(t, s.offset);
    }
    const opt = tensorsOf("optimizer.safetensors");
    const [m, v] = [opt.get("adamw.m"), opt.get("adamw.v")];
    if (!m || !v || m.length !== size || v.length !== size) throw new Error(`checkpoint ${dir}: optimizer.safetensors must hold adamw.m and adamw.v of ${size} values each`);
    return { state: { step: json.step, layout: json.layout, params, adamw: { step: json.adamwStep, m, v } }, extra: json.extra ?? {} };
  },
};
