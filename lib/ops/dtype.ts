/** Element-type conversions between f32 and bf16 (round to nearest even; NaN stays NaN). */
import { DalleError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { runOp1 } from './run.js';

/** A new tensor holding `x` (f32 or bf16) converted to `dtype`; a copy when it already is. */
export function cast(x: Tensor, dtype: 'bf16' | 'f32'): Tensor {
  if (dtype !== 'bf16' && dtype !== 'f32')
    throw new DalleError('E_INVALID_ARGUMENT', `cast: target dtype must be 'bf16' or 'f32', got ${String(dtype)}`);
  if (x.dtype === dtype) return x.to(x.device);
  return runOp1(dtype === 'bf16' ? 'cast_f32_to_bf16' : 'cast_bf16_to_f32', [x]);
}
