/** Examples ↔ batches: the packed [B, size, size, 3] layout models take, and the examples a batch holds. */
import type { Batch, Example } from './types.js';

/** Examples of `size`² pixels as a batch (its pixels copied): unpackBatch's inverse. */
export function packBatch(examples: readonly Example[], size: number): Batch {
  const per = size * size * 3;
  const images = new Uint8Array(examples.length * per);
  examples.forEach((e, i) => images.set(e.image.data, i * per));
  return { size, images, captions: examples.map((e) => e.caption), keys: examples.map((e) => e.key) };
}

/** A batch as examples (views into its pixels). */
export function unpackBatch(b: Batch): Example[] {
  const per = b.size * b.size * 3;
  return b.captions.map((caption, i) => ({ key: b.keys[i]!, caption, image: { width: b.size, height: b.size, data: b.images.subarray(i * per, (i + 1) * per) } }));
}
