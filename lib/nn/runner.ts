/**
 * How model code runs ops. Layers take an OpRunner instead of calling the addon directly, so the same forward and
 * backward code runs synchronously (inside a worker thread, or in tests, ~3 µs per call) or with every op on a libuv
 * worker (on the main thread: the event loop stays free between ops, ~35 µs per call). Awaiting the synchronous
 * runner's plain return value costs a microtask, nothing more.
 */
import type { NativeAttrs } from '../native/addon.js';
import { runOp, runOpAsync } from '../ops/run.js';
import type { Tensor } from '../tensor.js';

export type OpRunner = (name: string, inputs: readonly Tensor[], attrs?: NativeAttrs, out?: readonly Tensor[]) => Tensor[] | Promise<Tensor[]>;

export const syncRunner: OpRunner = runOp;
export const asyncRunner: OpRunner = runOpAsync;

/** Runs an op with one output. */
export async function run1(run: OpRunner, name: string, inputs: readonly Tensor[], attrs?: NativeAttrs): Promise<Tensor> {
  return (await run(name, inputs, attrs))[0]!;
}

/** Disposes every tensor given, skipping undefined: the cleanup of a layer's cache. */
export function disposeAll(...tensors: Array<Tensor | undefined>): void {
  for (const t of tensors) t?.dispose();
}
