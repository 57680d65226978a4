/**
 * Forward and backward of the dVAE's two networks, written out layer by layer (llm.c style) over a NetPlan. One
 * code path serves the encoder and the decoder: input conv, groups of bottleneck blocks with a resample between
 * groups, ReLU, output conv. A forward with `train` keeps what its backward needs in a cache; the backward consumes
 * (disposes) the cache and writes every parameter gradient straight into the gradient arena.
 *
 * Tensors are NHWC; conv weights HWIO. A block is y = id(x) + gain·conv₄(relu(conv₃(relu(conv₂(relu(conv₁(relu(x))))))));
 * ReLU's backward is given the ReLU's output, which is positive exactly where its input is.
 */
import { Tensor } from '../../tensor.js';
import { disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import type { BlockPlan, ConvPlan, NetPlan } from './config.js';

/** Named parameter (or gradient) tensors: an Arena, or any map with the plan's names. */
export interface TensorTable {
  get(name: string): Tensor;
}

interface BlockCache {
  x: Tensor;
  /** relu(x), relu(c₁), relu(c₂), relu(c₃): the inputs of conv₁..conv₄. */
  acts: Tensor[];
}

type StepCache =
  | { kind: 'block'; plan: BlockPlan; cache: BlockCache }
  | { kind: 'maxpool'; x: Tensor }
  | { kind: 'upsample' };

export interface NetCache {
  input: Tensor;
  steps: StepCache[];
  /** relu of the last group's output: the output conv's input. */
  outAct: Tensor;
}

function conv(run: OpRunner, p: TensorTable, c: ConvPlan, x: Tensor): Promise<Tensor> {
  return run1(run, 'conv2d_forward', [x, p.get(`${c.name}.w`), p.get(`${c.name}.b`)]);
}

/** dx of a conv, with dw and db written into the gradient table. */
async function convBackward(run: OpRunner, p: TensorTable, g: TensorTable, c: ConvPlan, x: Tensor, dy: Tensor): Promise<Tensor> {
  const dx = Tensor.zeros(x.shape);
  try {
    await run('conv2d_backward', [x, p.get(`${c.name}.w`), dy], undefined, [dx, g.get(`${c.name}.w`), g.get(`${c.name}.b`)]);
  } catch (err) {
    dx.dispose();
    throw err;
  }
  return dx;
}

export async function blockForward(run: OpRunner, p: TensorTable, b: BlockPlan, gain: number, x: Tensor, train: boolean): Promise<{ y: Tensor; cache?: BlockCache }> {
  const acts: Tensor[] = [];
  let h: Tensor | undefined;
  try {
    let a = await run1(run, 'relu_forward', [x]);
    for (let i = 0; i < 4; i++) {
      acts.push(a);
      h = await conv(run, p, b.resPath[i]!, a);
      if (i < 3) {
        a = await run1(run, 'relu_forward', [h]);
        h.dispose();
        h = undefined;
        if (!train) acts.shift()!.dispose();
      }
    }
    const id = b.idPath ? await conv(run, p, b.idPath, x) : x;
    try {
      const y = await run1(run, 'residual_forward', [id, h!], { scale: gain });
      if (!train) disposeAll(...acts);
      return train ? { y, cache: { x, acts } } : { y };
    } finally {
      if (id !== x) id.dispose();
    }
  } catch (err) {
    disposeAll(...acts);
    throw err;
  } finally {
    h?.dispose();
  }
}

export async function blockBackward(run: OpRunner, p: TensorTable, g: TensorTable, b: BlockPlan, gain: number, cache: BlockCache, dy: Tensor): Promise<Tensor> {
  const { x, acts } = cache;
  const [dId, dRes] = await run('residual_backward', [dy], { scale: gain });
  let d: Tensor = dRes!;
  try {
    for (let i = 3; i >= 0; i--) {
      const da = await convBackward(run, p, g, b.resPath[i]!, acts[i]!, d);
      d.dispose();
      d = da;
      // acts[i] = relu(previous): its positive entries mark where the previous value was positive.
      const dPrev = await run1(run, 'relu_backward', [i > 0 ? acts[i]! : x, d]);
      d.dispose();
      d = dPrev;
    }
    const dxId = b.idPath ? await convBackward(run, p, g, b.idPath, x, dId!) : dId!;
    try {
      return await run1(run, 'residual_forward', [dxId, d], { scale: 1 });
    } finally {
      if (dxId !== dId) dxId.dispose();
    }
  } finally {
    disposeAll(d, dId, ...acts);
  }
}

/**
 * y = plan(x). With `train`, also returns the cache its backward needs; it refers to x, so keep x until the
 * backward has run. Without, every intermediate is freed as soon as it is used. x stays the caller's either way.
 */
export async function netForward(run: OpRunner, p: TensorTable, plan: NetPlan, x: Tensor, train: boolean): Promise<{ y: Tensor; cache?: NetCache }> {
  return netBody(run, p, plan, await conv(run, p, plan.input, x), train, x);
}

/**
 * Inference from the input conv's output onward: for callers that compute that layer more cheaply themselves (the
 * decoder's 1×1 conv over one-hot codes is a row lookup). Consumes `h`.
 */
export async function netForwardAfterInput(run: OpRunner, p: TensorTable, plan: NetPlan, h: Tensor): Promise<Tensor> {
  return (await netBody(run, p, plan, h, false, h)).y;
}

/** Everything after the input conv; consumes h, the input conv's output. */
async function netBody(run: OpRunner, p: TensorTable, plan: NetPlan, h: Tensor, train: boolean, x: Tensor): Promise<{ y: Tensor; cache?: NetCache }> {
  const steps: StepCache[] = [];
  try {
    for (const group of plan.groups) {
      for (const b of group.blocks) {
        const { y, cache } = await blockForward(run, p, b, plan.postGain, h, train);
        if (cache) steps.push({ kind: 'block', plan: b, cache });
        else h.dispose();
        h = y;
      }
      if (group.resample === 'maxpool') {
        const y = await run1(run, 'maxpool2x2_forward', [h]);
        if (train) steps.push({ kind: 'maxpool', x: h });
        else h.dispose();
        h = y;
      } else if (group.resample === 'upsample') {
        const y = await run1(run, 'upsample2x_forward', [h]);
        if (train) steps.push({ kind: 'upsample' });
        h.dispose();
        h = y;
      }
    }
    const outAct = await run1(run, 'relu_forward', [h]);
    h.dispose();
    try {
      const y = await conv(run, p, plan.output, outAct);
      if (!train) {
        outAct.dispose();
        return { y };
      }
      return { y, cache: { input: x, steps, outAct } };
    } catch (err) {
      outAct.dispose();
      throw err;
    }
  } catch (err) {
    if (!h.disposed) h.dispose();
    disposeCache(steps);
    throw err;
  }
}

/** Frees what a training forward kept, for when its backward will not run (an error between the two). */
export function disposeNetCache(cache: NetCache | undefined): void {
  if (!cache) return;
  cache.outAct.dispose();
  disposeCache(cache.steps);
}

/** Each intermediate belongs to exactly one step: a block owns its input and activations, a max-pool its input. */
function disposeCache(steps: StepCache[]): void {
  for (const s of steps) {
    if (s.kind === 'block') disposeAll(s.cache.x, ...s.cache.acts);
    else if (s.kind === 'maxpool') s.x.dispose();
  }
  steps.length = 0;
}

/**
 * Backward of netForward: writes every parameter gradient of the plan into `grads` (overwriting) and returns dL/dx
 * when `wantDx`, else null. Consumes the cache and `dy`'s ownership stays with the caller.
 */
export async function netBackward(run: OpRunner, p: TensorTable, grads: TensorTable, plan: NetPlan, cache: NetCache, dy: Tensor, wantDx: boolean): Promise<Tensor | null> {
  const { steps, outAct } = cache;
  let d = await convBackward(run, p, grads, plan.output, outAct, dy);
  try {
    const dh = await run1(run, 'relu_backward', [outAct, d]);
    d.dispose();
    d = dh;
    while (steps.length > 0) {
      const s = steps.pop()!;
      let next: Tensor;
      if (s.kind === 'maxpool') {
        next = await run1(run, 'maxpool2x2_backward', [s.x, d]);
        s.x.dispose();
      } else if (s.kind === 'upsample') {
        next = await run1(run, 'upsample2x_backward', [d]);
      } else {
        next = await blockBackward(run, p, grads, s.plan, plan.postGain, s.cache, d);
        s.cache.x.dispose();
      }
      d.dispose();
      d = next;
    }
    if (wantDx) return await convBackward(run, p, grads, plan.input, cache.input, d);
    // The input (the images) needs no gradient: only the first conv's weights and bias.
    const c = plan.input;
    await run('conv2d_backward_weights', [cache.input, p.get(`${c.name}.w`), d], undefined, [grads.get(`${c.name}.w`), grads.get(`${c.name}.b`)]);
    return null;
  } finally {
    d.dispose();
    outAct.dispose();
    disposeCache(steps);
  }
}
