/** The one path from a typed op function to the native registry. */
import { DalleError } from '../errors.js';
import { loadAddon } from '../native/loader.js';
import type { NativeAttrs, NativeTensorHandle } from '../native/addon.js';
import { Tensor } from '../tensor.js';

/** The handles of a list of tensors; anything else (null, a number, a disposed tensor's handle) is a typed error. */
function handlesOf(op: string, list: unknown, what: string): NativeTensorHandle[] {
  if (!Array.isArray(list)) throw new DalleError('E_INVALID_ARGUMENT', `${op}: ${what} must be an array of tensors`);
  return list.map((t: unknown, i) => {
    if (!(t instanceof Tensor)) {
      const got = t === null ? 'null' : Array.isArray(t) ? 'an array' : typeof t;
      throw new DalleError('E_INVALID_ARGUMENT', `${op}: ${what}[${i}] is not a Tensor (got ${got})`);
    }
    return t.handle;
  });
}

/** Runs a registered op; outputs are new tensors unless `out` supplies them (then returned). */
export function runOp(name: string, inputs: readonly Tensor[], attrs?: NativeAttrs, out?: readonly Tensor[]): Tensor[] {
  const handles = handlesOf(name, inputs, 'inputs');
  if (out) {
    loadAddon().runOp(name, handles, attrs, handlesOf(name, out, 'out'));
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
  const handles = handlesOf(name, inputs, 'inputs');
  if (out) {
    await loadAddon().runOpAsync(name, handles, attrs, handlesOf(name, out, 'out'));
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
