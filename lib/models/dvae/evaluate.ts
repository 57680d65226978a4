/**
 * Held-out evaluation of a dVAE: reconstruction PSNR, codebook usage, and, for shapes-world scenes, whether the
 * shapes detector still reads each reconstruction as satisfying the scene's caption (the originals always do), per
 * capability.
 */
import { packBatch } from '../../data/batch.js';
import { checkCaption, detect } from '../../data/shapes/detect.js';
import { parseCaption } from '../../data/shapes/captions.js';
import type { Example } from '../../data/types.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, type OpRunner } from '../../nn/runner.js';
import { type CodeUsage, psnrFromSquaredError, squaredError, usageFromCounts } from './metrics.js';
import type { Dvae } from './model.js';

export interface DvaeEvaluation {
  images: number;
  /** PSNR over all evaluated pixels together, in dB. */
  psnr: number;
  usage: CodeUsage;
  /** With `shapes`: per capability, reconstructions whose caption the detector still finds satisfied. */
  detector?: Record<string, { agree: number; total: number; fraction: number }>;
  /** Agreement over every scene. */
  detectorAgreement?: number;
  /**
   * With `shapes`: scenes whose reconstruction the detector reads as the same number of objects in the same colours
   * as the original (shapes, sizes and positions aside). A weaker check than the caption's, for telling colour
   * errors from outline errors.
   */
  colorAgreement?: number;
}

/** The detected objects' colours, sorted: what colorAgreement compares. */
function detectedColors(s: number, data: Uint8Array): string {
  return detect({ width: s, height: s, data }).objects.map((o) => o.color).sort().join(',');
}

export async function evaluateDvae(
  model: Dvae,
  examples: Iterable<Example> | AsyncIterable<Example>,
  options: { batchSize?: number; shapes?: boolean; run?: OpRunner; onReconstruction?: (original: Example, reconstruction: Uint8Array) => void } = {},
): Promise<DvaeEvaluation> {
  const s = model.config.imageSize;
  const per = s * s * 3;
  const batchSize = options.batchSize ?? 32;
  const run = options.run ?? asyncRunner;
  // Running totals, so evaluating a large set keeps no images.
  let images = 0;
  let se = 0;
  const counts = new Float64Array(model.config.vocabSize);
  const detector: Record<string, { agree: number; total: number; fraction: number }> = {};
  let colorsAgree = 0;
  let pending: Example[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const packed = packBatch(pending, s).images;
    const c = await model.encode(packed, run);
    const r = await model.decode(c, run);
    for (const code of c) counts[code]!++;
    se += squaredError(packed, r);
    images += pending.length;
    pending.forEach((e, i) => {
      const recon = r.subarray(i * per, (i + 1) * per);
      options.onReconstruction?.(e, recon);
      if (!options.shapes) return;
      const query = parseCaption(e.caption);
      const cap = query.capability;
      const entry = (detector[cap] ??= { agree: 0, total: 0, fraction: 0 });
      entry.total++;
      if (checkCaption({ width: s, height: s, data: recon }, query)) entry.agree++;
      if (detectedColors(s, recon) === detectedColors(s, e.image.data)) colorsAgree++;
    });
    pending = [];
  };
  for await (const e of examples as AsyncIterable<Example>) {
    if (e.image.width !== s || e.image.height !== s) {
      throw new DalleError('E_INVALID_ARGUMENT', `evaluateDvae: ${e.key} is ${e.image.width}x${e.image.height}; the model takes ${s}x${s}`);
    }
    pending.push(e);
    if (pending.length === batchSize) await flush();
  }
  await flush();
  if (images === 0) throw new DalleError('E_INVALID_ARGUMENT', 'evaluateDvae: no examples');
  const result: DvaeEvaluation = { images, psnr: psnrFromSquaredError(se, images * per), usage: usageFromCounts(counts) };
  if (options.shapes) {
    let agree = 0;
    let total = 0;
    for (const v of Object.values(detector)) {
      v.fraction = v.agree / v.total;
      agree += v.agree;
      total += v.total;
    }
    result.detector = detector;
    result.detectorAgreement = agree / total;
    result.colorAgreement = colorsAgree / total;
  }
  return result;
}
