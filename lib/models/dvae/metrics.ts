/** What a dVAE is judged by: reconstruction PSNR and how much of the codebook it uses. */
import { DalleError } from '../../errors.js';

/** Peak signal-to-noise ratio in dB between two uint8 images (or batches) of the same size; Infinity when equal. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || a.length === 0) throw new DalleError('E_INVALID_ARGUMENT', `psnr: sizes differ or are empty (${a.length} vs ${b.length})`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / se);
}

export interface CodeUsage {
  /** exp(entropy) of the code histogram: the number of equally used codes with the same entropy. */
  perplexity: number;
  /** Distinct codes seen. */
  used: number;
  vocabSize: number;
}

export function codeUsage(codes: ArrayLike<number>, vocabSize: number): CodeUsage {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < codes.length; i++) counts[codes[i]!]!++;
  let h = 0;
  let used = 0;
  for (const c of counts) {
    if (c === 0) continue;
    used++;
    const p = c / codes.length;
    h -= p * Math.log(p);
  }
  return { perplexity: Math.exp(h), used, vocabSize };
}
