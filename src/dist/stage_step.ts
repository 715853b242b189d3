// stage_step.ts: a pipeline stage's two computations on one micro-batch, each captured once with jit and
// replayed after (no graph building or scheduling per micro-batch): the forward, input -> output (the
// activation for the next stage, or on the last stage the loss), and the backward, (input, output
// gradient) -> the gradients of the stage's parameters and of its input. The backward recomputes the
// forward from the input (full activation recomputation): a replayed capture cannot hand its
// intermediates to another, so a stage keeps only each in-flight micro-batch's input, at the price of
// one more forward per micro-batch. Results come back as host arrays (what send and the host-side
// accumulation take). A capture binds the parameter tensors it saw; when the trainer replaces them
// (its flat buffer, loadState) the captures are made again.

import type { JitFunction, Tensor } from "../index.js";
import { gradients, jit, noGrad } from "../index.js";
import type { PipelineModel, PipelineStage } from "./pipeline_stage.js";

export class StageStep {
  private fwd: JitFunction<Tensor[]> | undefined;
  private bwd: JitFunction<Tensor[]> | undefined;
  private bound: readonly Tensor[] = [];

  constructor(
    private readonly model: PipelineModel,
    private readonly stage: PipelineStage,
    private readonly batch: number,
    private readonly length: number,
  ) {}

  /** The stage's output for this micro-batch, on the host: the next stage's input (B*T * dim), or [loss] on the last stage. */
  async forward(x: { input: Tensor; targets: Tensor | undefined }): Promise<Float32Array> {
    this.checkBound();
    this.fwd ??= jit((input: Tensor, targets?: Tensor) => noGrad(() => [this.stage.run(this.pieces(), input, targets)]));
    const [out] = await this.fwd(...this.args(x.input, x.targets));
    return Float32Array.from((await out!.data()) as Float32Array);
  }

  /** Each parameter's gradient (stage.names order) and the input's (undefined on the first stage, whose input is token ids), on the host. */
  async backward(x: { input: Tensor; targets: Tensor | undefined }, seed: Tensor): Promise<{ grads: Float32Array[]; inputGrad: Float32Array | undefined }> {
    this.checkBound();
    const params = this.params();
    const first = this.stage.isFirst;
    this.bwd ??= jit((input: Tensor, seedIn: Tensor, targets?: Tensor) => {
      // NOTE: the input is a leaf of this capture: its gradient is what the previous stage needs.
      if (!first) input.requiresGrad = true;
      const out = this.stage.run(this.pieces(), input, targets);
      const wrt = first ? params : [...params, input];
      return gradients([out], wrt, [seedIn]).map((g, i) => g ?? wrt[i]!.full(wrt[i]!.shape, 0));
    });
    const outs = await this.bwd(...this.args(x.input, x.targets, seed));
    const host = await Promise.all(outs.map(async (g) => Float32Array.from((await g.data()) as Float32Array)));
    return { grads: host.slice(0, params.length), inputGrad: first ? undefined : host.at(-1) };
  }

  private args(input: Tensor, targets: Tensor | undefined, seed?: Tensor): Tensor[] {
    return [input, ...(seed ? [seed] : []), ...(targets ? [targets] : [])];
  }

  private pieces() {
    return this.model.trainingPieces(this.batch, this.length);
  }

  private params(): Tensor[] {
    return [...this.stage.parameters().values()];
  }

  /** Drops the captures when the parameters they bound were replaced. */
  private checkBound(): void {
    const now = this.params();
    if (now.length === this.bound.length && now.every((t, i) => t === this.bound[i])) return;
    this.fwd?.dispose();
    this.bwd?.dispose();
    [this.fwd, this.bwd, this.bound] = [undefined, undefined, now];
  }
}
