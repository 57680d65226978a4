/**
 * Counter-based random draws (Philox4x32-10). Element i of a draw uses stream word `offset + i`
 * (randomNormal: words `offset + 2i` and `offset + 2i + 1`), so a draw is a pure function of
 * (seed, offset, shape): the same on any thread count and backend, and a draw at `offset + k`
 * equals elements k.. of a larger draw at `offset`. Advance `offset` past the words a draw used
 * (`size`, or `2·size` for randomNormal) to get fresh numbers under the same seed.
 */
import { Tensor, type DeviceName, type DType } from '../tensor.js';
import { runOp1 } from './run.js';

export interface RandomOptions {
  /** Philox key: an integer in [0, 2^53 - 1]. */
  seed: number;
  /** First stream word used: an integer in [0, 2^53 - 1]; default 0. */
  offset?: number;
  device?: DeviceName;
}

function draw(op: string, dtype: DType, shape: readonly number[], o: RandomOptions): Tensor {
  // The output doubles as the `like` input: the kernel reads only its shape.
  const out = Tensor.zeros(shape, { dtype, device: o.device ?? 'cpu' });
  try {
    return runOp1(op, [out], { seed: o.seed, offset: o.offset ?? 0 }, out);
  } catch (err) {
    out.dispose();
    throw err;
  }
}

/** i32 tensor of `shape`: the raw 32-bit Philox words, reinterpreted as int32 (`>>> 0` for uint32). */
export function philoxUint32(shape: readonly number[], options: RandomOptions): Tensor {
  return draw('philox_uint32', 'i32', shape, options);
}

/** f32 tensor of `shape`, uniform in the open interval (0, 1) (24 random bits per element). */
export function randomUniform(shape: readonly number[], options: RandomOptions): Tensor {
  return draw('random_uniform', 'f32', shape, options);
}

/** f32 tensor of `shape`, N(0, 1) by Box-Muller (cosine half) from two stream words per element. */
export function randomNormal(shape: readonly number[], options: RandomOptions): Tensor {
  return draw('random_normal', 'f32', shape, options);
}
