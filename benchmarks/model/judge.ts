/** The detector's verdicts on one prompt's samples, shared by the benchmarks that measure reranking. */
import { checkCaption } from '../../lib/data/shapes/index.js';
import type { Clip } from '../../lib/models/clip/model.js';
import { rerank } from '../../lib/models/clip/train.js';
import type { OpRunner } from '../../lib/nn/runner.js';

export interface Verdicts {
  /** The first sample passes (the transformer alone). */
  first: boolean;
  /** CLIP's best sample passes (the paper's pipeline). */
  best: boolean;
  /** Some sample passes. */
  any: boolean;
}

/** `images`: uint8 [n, size, size, 3], the samples of `caption`; `clipText`: the caption in CLIP's text slots. */
export async function judgeSamples(clip: Clip, clipText: Int32Array, caption: string, images: Uint8Array, size: number, run: OpRunner): Promise<Verdicts> {
  const per = size * size * 3;
  const ok = Array.from({ length: images.length / per }, (_, i) => checkCaption({ width: size, height: size, data: images.subarray(i * per, (i + 1) * per) }, caption));
  const ranked = await rerank(clip, clipText, images, 1, { run });
  return { first: ok[0]!, best: ok[ranked.order[0]!]!, any: ok.some(Boolean) };
}
