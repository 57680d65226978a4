/**
 * Held-out evaluation of a dVAE: reconstruction PSNR, codebook usage, and, for shapes-world scenes, whether the
 * shapes detector still reads each reconstruction as satisfying the scene's caption (the originals always do), per
 * capability.
 */
import { checkCaption } from '../../data/shapes/detect.js';
import { parseCaption } from '../../data/shapes/captions.js';
import type { Example } from '../../data/types.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, type OpRunner } from '../../nn/runner.js';
import { codeUsage, type CodeUsage, psnr } from './metrics.js';
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
  const originals: Uint8Array[] = [];
  const recons: Uint8Array[] = [];
  const codes: Int32Array[] = [];
  const detector: Record<string, { agree: number; total: number; fraction: number }> = {};
  let pending: Example[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const packed = new Uint8Array(pending.length * per);
    pending.forEach((e, i) => packed.set(e.image.data, i * per));
    const c = await model.encode(packed, run);
    const r = await model.decode(c, run);
    codes.push(c);
    originals.push(packed);
    recons.push(r);
    pending.forEach((e, i) => {
      const recon = r.subarray(i * per, (i + 1) * per);
      options.onReconstruction?.(e, recon);
      if (!options.shapes) return;
      const query = parseCaption(e.caption);
      const cap = query.capability;
      const entry = (detector[cap] ??= { agree: 0, total: 0, fraction: 0 });
      entry.total++;
      if (checkCaption({ width: s, height: s, data: recon }, query)) entry.agree++;
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
  const cat = (xs: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of xs) out.set(x, (o += x.length) - x.length);
    return out;
  };
  const allCodes = new Int32Array(codes.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of codes) allCodes.set(c, (o += c.length) - c.length);
  const result: DvaeEvaluation = {
    images: originals.reduce((n, x) => n + x.length / per, 0),
    psnr: psnr(cat(originals), cat(recons)),
    usage: codeUsage(allCodes, model.config.vocabSize),
  };
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
  }
  return result;
}
