/** The DALL·E attention masks written from DALLE-SPEC.md §2, independent of the native range logic. */
import { convHalfWidth, type AttentionMaskKind } from '../../lib/ops/attention.js';

/**
 * The spec's rule for key k of query q. `layout` 'kernel' is what the op computes (column mode in
 * the transposed layout: blocks of W); 'raster' is the column mask as the paper states it.
 */
export function specAllowed(kind: AttentionMaskKind, T: number, W: number, q: number, k: number, layout: 'kernel' | 'raster'): boolean {
  if (k > q) return false;
  if (k < T) return true;
  const i = q - T;
  const j = k - T;
  const d = i - j;
  switch (kind) {
    case 'causal':
      return true;
    case 'row':
      return d <= W;
    case 'column':
      return layout === 'kernel' ? Math.floor(i / W) === Math.floor(j / W) : d % W === 0;
    case 'conv': {
      const h = convHalfWidth(W);
      if (d <= h) return true;
      for (let dr = 1; dr <= h; dr++) for (let dc = -h; dc <= h; dc++) if (d === W * dr + dc) return true;
      return false;
    }
  }
}

export function specMask(kind: AttentionMaskKind, T: number, W: number, S: number, layout: 'kernel' | 'raster'): Int32Array {
  const m = new Int32Array(S * S);
  for (let q = 0; q < S; q++) for (let k = 0; k < S; k++) m[q * S + k] = specAllowed(kind, T, W, q, k, layout) ? 1 : 0;
  return m;
}
