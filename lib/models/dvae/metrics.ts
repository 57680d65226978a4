/** What a dVAE is judged by: reconstruction PSNR and how much of the codebook it uses. */
import { DalleError } from '../../errors.js';

/** Σ (a − b)² over two uint8 arrays of the same non-empty length. */
export function squaredError(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || a.length === 0) throw new DalleError('E_INVALID_ARGUMENT', `psnr: sizes differ or are empty (${a.length} vs ${b.length})`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  return se;
}

/** PSNR in dB from a squared error summed over `count` uint8 values; Infinity when the error is 0. */
export function psnrFromSquaredError(se: number, count: number): number {
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * count) / se);
}

/** Peak signal-to-noise ratio in dB between two uint8 images (or batches) of the same size; Infinity when equal. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  return psnrFromSquaredError(squaredError(a, b), a.length);
}

export interface CodeUsage {
  /** exp(entropy) of the code histogram: the number of equally used codes with the same entropy. */
  perplexity: number;
  /** Distinct codes seen. */
  used: number;
  vocabSize: number;
}

/** Code histogram → usage. */
export function usageFromCounts(counts: ArrayLike<number>): CodeUsage {
  let total = 0;
  for (let k = 0; k < counts.length; k++) total += counts[k]!;
  let h = 0;
  let used = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k]!;
    if (c === 0) continue;
    used++;
    const p = c / total;
    h -= p * Math.log(p);
  }
  return { perplexity: Math.exp(h), used, vocabSize: counts.length };
}

export function codeUsage(codes: ArrayLike<number>, vocabSize: number): CodeUsage {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < codes.length; i++) counts[codes[i]!]!++;
  return usageFromCounts(counts);
}
