/** The one path from a typed op function to the native registry. */
import { loadAddon } from '../native/loader.js';
import type { NativeAttrs } from '../native/addon.js';
import { Tensor } from '../tensor.js';

/** Runs a registered op; outputs are new tensors unless `out` supplies them (then returned). */
export function runOp(name: string, inputs: readonly Tensor[], attrs?: NativeAttrs, out?: readonly Tensor[]): Tensor[] {
  const handles = inputs.map((t) => t.handle);
  if (out) {
    loadAddon().runOp(name, handles, attrs, out.map((t) => t.handle));
    return [...out];
  }
  return loadAddon().runOp(name, handles, attrs).map((h) => new Tensor(h));
}

/** Like runOp, on a libuv worker thread; the inputs stay alive until it settles. */
export async function runOpAsync(
  name: string,
  inputs: readonly Tensor[],
  attrs?: NativeAttrs,
  out?: readonly Tensor[],
): Promise<Tensor[]> {
  const handles = inputs.map((t) => t.handle);
  if (out) {
    await loadAddon().runOpAsync(name, handles, attrs, out.map((t) => t.handle));
    return [...out];
  }
  return (await loadAddon().runOpAsync(name, handles, attrs)).map((h) => new Tensor(h));
}

/** Runs an op with exactly one output. */
export function runOp1(name: string, inputs: readonly Tensor[], attrs?: NativeAttrs, out?: Tensor): Tensor {
  return runOp(name, inputs, attrs, out ? [out] : undefined)[0]!;
}

/** Names of every registered op (forward and backward). */
export function opNames(): string[] {
  return loadAddon().opNames();
}
