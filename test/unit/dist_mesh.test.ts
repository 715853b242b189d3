// dist_mesh.test.ts: the device mesh's layout (dist/mesh.ts) as plain data: coordinates round-trip, every
// dimension's groups partition the world, tensor-parallel groups are consecutive ranks (one node), pipeline
// stages vary slowest, expert groups sit inside data-parallel groups, and bad shapes are named.

import { describe, expect, it } from "vitest";
import { checkMeshShape, meshCoords, meshGroups, meshRank, type MeshShape } from "../../src/dist/mesh.js";

const shapes: MeshShape[] = [
  { dp: 2, tp: 2, pp: 2, ep: 1 },
  { dp: 4, tp: 2, pp: 1, ep: 2 },
  { dp: 1, tp: 1, pp: 4, ep: 1 },
  { dp: 3, tp: 1, pp: 2, ep: 3 },
];

describe("device mesh", () => {
  for (const shape of shapes) {
    const world = shape.dp * shape.tp * shape.pp;
    it(`dp ${shape.dp} tp ${shape.tp} pp ${shape.pp} ep ${shape.ep}: groups partition the world`, () => {
      for (const dim of ["dp", "tp", "pp", "ep"] as const) {
        const seen = new Map<number, string>();
        for (let r = 0; r < world; r++) {
          const g = meshGroups(shape, r)[dim];
          expect(g).toContain(r);
          expect(g.length).toBe(dim === "ep" ? shape.ep : shape[dim]);
          // Every member of r's group sees the same group: the groups are a partition.
          for (const m of g) expect(meshGroups(shape, m)[dim]).toEqual(g);
          seen.set(r, g.join());
        }
        expect(new Set(seen.values()).size * (dim === "ep" ? shape.ep : shape[dim])).toBe(world);
      }
      for (let r = 0; r < world; r++) {
        const c = meshCoords(shape, r);
        expect(meshRank(shape, c)).toBe(r);
        const tp = meshGroups(shape, r).tp;
        expect(tp.at(-1)! - tp[0]!).toBe(shape.tp - 1); // consecutive: inside a node
        expect(meshGroups(shape, r).dp).toEqual(expect.arrayContaining(meshGroups(shape, r).ep)); // experts inside dp
        expect(c.pp).toBe(Math.floor(r / (shape.dp * shape.tp))); // stages slowest
      }
    });
  }

  it("names what is wrong with a shape", () => {
    expect(() => checkMeshShape({ dp: 2, tp: 2, pp: 1, ep: 1 }, 8)).toThrow(/dp 2 x tp 2 x pp 1 = 4 ranks, but the world has 8/);
    expect(() => checkMeshShape({ dp: 4, tp: 1, pp: 1, ep: 3 }, 4)).toThrow(/ep 3 must divide dp 4/);
    expect(() => checkMeshShape({ dp: 0, tp: 1, pp: 1, ep: 1 }, 0)).toThrow(/dp must be an integer >= 1, got 0/);
    expect(() => checkMeshShape({ dp: 1.5, tp: 1, pp: 1, ep: 1 } as MeshShape, 1)).toThrow(/dp must be an integer/);
  });
});
