/** The one path from a typed op function to the native registry. */
import { DalleError } from '../errors.js';
import { loadAddon } from '../native/loader.js';
import type { NativeAttrs, NativeTensorHandle } from '../native/addon.js';
import { Tensor } from '../tensor.js';

/**
 * A list of tensors, copied into a plain array; anything else (null, a number, a Proxy of a tensor) is a typed
 * error. A plain loop, not map() or spreading: map walks every index of a sparse new Array(2 ** 32 - 1) and honours
 * an array subclass's species, spreading runs its iterator; this reads each index once and stops at the first
 * non-tensor.
 */
function tensorsOf(op: string, list: unknown, what: string): Tensor[] {
  if (!Array.isArray(list)) throw new DalleError('E_INVALID_ARGUMENT', `${op}: ${what} must be an array of tensors`);
  const tensors: Tensor[] = [];
  for (let i = 0; i < list.length; i++) {
    const t: unknown = list[i];
    if (!Tensor.isTensor(t)) {
      const got = t === null ? 'null' : Array.isArray(t) ? 'an array' : t instanceof Tensor ? 'an object posing as a Tensor' : typeof t;
      throw new DalleError('E_INVALID_ARGUMENT', `${op}: ${what}[${i}] is not a Tensor (got ${got})`);
    }
    tensors.push(t);
  }
  return tensors;
}

/** The handles of a list of tensors; a disposed tensor is E_DISPOSED. */
function handlesOf(op: string, list: unknown, what: string): NativeTensorHandle[] {
  return tensorsOf(op, list, what).map((t) => t.handle);
}

/**
 * Checks what handlesOf cannot: the name (used in its messages, where a symbol would throw a TypeError) and the
 * attributes, which must be a plain object: the addon enumerates every key, and an array, typed array or String
 * object would make each of its indices one.
 */
function checkCall(name: unknown, attrs: unknown): asserts name is string {
  if (typeof name !== 'string') throw new DalleError('E_INVALID_ARGUMENT', `op name must be a string, got ${name === null ? 'null' : typeof name}`);
  if (attrs === undefined || attrs === null) return;
  const proto: unknown = typeof attrs === 'object' ? Object.getPrototypeOf(attrs) : undefined;
  if (proto !== Object.prototype && proto !== null)
    throw new DalleError('E_INVALID_ARGUMENT', `${name}: attributes must be a plain object of numbers, got ${Array.isArray(attrs) ? 'an array' : typeof attrs === 'object' ? 'a class instance' : typeof attrs}`);
}

/** Runs a registered op; outputs are new tensors unless `out` supplies them (then returned). */
export function runOp(name: string, inputs: readonly Tensor[], attrs?: NativeAttrs, out?: readonly Tensor[]): Tensor[] {
  checkCall(name, attrs);
  const handles = handlesOf(name, inputs, 'inputs');
  if (out) {
    const outs = tensorsOf(name, out, 'out');
    loadAddon().runOp(name, handles, attrs, outs.map((t) => t.handle));
    return outs;
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
  checkCall(name, attrs);
  const handles = handlesOf(name, inputs, 'inputs');
  if (out) {
    const outs = tensorsOf(name, out, 'out');
    await loadAddon().runOpAsync(name, handles, attrs, outs.map((t) => t.handle));
    return outs;
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
