/**
 * Training CLIP with the shared trainer on image–caption pairs, and reranking with it. Defaults follow the CLIP
 * paper's optimizer: AdamW (0.9, 0.98, 1e-6, weight decay 0.2), cosine learning rate after a warm-up.
 */
import type { Arena } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, type OpRunner } from '../../nn/runner.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import type { CosineSchedule } from '../../train/schedule.js';
import { type AdamWConfig, type StepMetrics, train, type TrainerOptions, type TrainResult, type TrainTask } from '../../train/trainer.js';
import { clipLoss, cosineMatrix } from './loss.js';
import { textSlots } from '../transformer/train.js';
import type { Clip } from './model.js';

export const CLIP_PAPER_ADAM: AdamWConfig = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 };

/** B pairs: text slots i32 [B·T] (−1 = empty) and uint8 images [B, S, S, 3]. */
export interface ClipBatch {
  text: Int32Array;
  images: Uint8Array;
}

export class ClipTask implements TrainTask<ClipBatch> {
  readonly kind = 'clip';
  readonly params: Arena;
  readonly configJson: string;

  constructor(readonly model: Clip) {
    this.params = model.params;
    this.configJson = JSON.stringify(model.config);
  }

  async step(batch: ClipBatch, grads: Arena, _step: number, run: OpRunner): Promise<StepMetrics> {
    const r = await this.model.lossAndGrad(batch.text, batch.images, grads, run);
    return { loss: r.loss, scale: r.scale, imageToText: r.imageToTextAccuracy, textToImage: r.textToImageAccuracy };
  }

  async evalLoss(batch: ClipBatch, run: OpRunner): Promise<StepMetrics> {
    const text = await this.model.encodeText(batch.text, run);
    const images = await this.model.encodeImages(batch.images, run);
    const E = this.model.config.embedDim;
    const top1 = retrievalTop1(text, images, E);
    const { loss } = clipLoss(text, images, E, this.model.params.get('logit_scale').toFloat32Array()[0]!);
    return { loss, textToImage: top1.textToImage, imageToText: top1.imageToText };
  }

  batchSize(batch: ClipBatch): number {
    return batch.text.length / this.model.config.textLen;
  }
}

export interface ClipTrainOptions extends Omit<TrainerOptions<ClipBatch>, 'lr'> {
  /** Default 5e-4 → 5e-6 (cosine) over the run. */
  lr?: CosineSchedule;
}

export function trainClip(model: Clip, options: ClipTrainOptions): Promise<TrainResult> {
  return train(new ClipTask(model), {
    ...options,
    lr: options.lr ?? { from: 5e-4, to: 5e-6, steps: options.steps },
    lrWarmupSteps: options.lrWarmupSteps ?? Math.min(2000, Math.ceil(options.steps / 20)),
    adam: { ...CLIP_PAPER_ADAM, ...options.adam },
  });
}

/** Top-1 retrieval over B pairs: for each text the most similar image is its own (and the reverse), as fractions. */
export function retrievalTop1(text: Float32Array, images: Float32Array, E: number): { textToImage: number; imageToText: number } {
  const B = text.length / E;
  const cos = cosineMatrix(text, images, E);
  let t2i = 0;
  let i2t = 0;
  for (let a = 0; a < B; a++) {
    let best = 0;
    for (let b = 1; b < B; b++) if (cos[a * B + b]! > cos[a * B + best]!) best = b;
    if (best === a) t2i++;
    let bestT = 0;
    for (let b = 1; b < B; b++) if (cos[b * B + a]! > cos[bestT * B + a]!) bestT = b;
    if (bestT === a) i2t++;
  }
  return { textToImage: t2i / B, imageToText: i2t / B };
}

export interface RerankResult {
  /** Indices into the images, best first (the first `keep`). */
  order: number[];
  /** Cosine similarity of each kept image to the text, in the same order. */
  scores: number[];
}

/**
 * Orders images [n, S, S, 3] by CLIP similarity to a prompt (a string, encoded with `options.tokenizer`, or its text
 * slots [T]) and keeps the best `keep`; ties keep the earlier image. Images are encoded `batch` at a time.
 */
export async function rerank(
  model: Clip,
  prompt: string | Int32Array,
  images: Uint8Array,
  keep: number,
  options: { batch?: number; run?: OpRunner; tokenizer?: BpeTokenizer } = {},
): Promise<RerankResult> {
  const { textLen: T, imageSize: S, embedDim: E } = model.config;
  let text: Int32Array;
  if (typeof prompt === 'string') {
    if (!options.tokenizer) throw new DalleError('E_INVALID_ARGUMENT', 'rerank: a text prompt needs options.tokenizer (CLIP’s BPE tokenizer)');
    text = textSlots(options.tokenizer, prompt, T);
  } else text = prompt;
  if (text.length !== T) throw new DalleError('E_INVALID_ARGUMENT', `rerank: text must be one caption's ${T} slots`);
  const per = S * S * 3;
  if (images.length === 0 || images.length % per !== 0) throw new DalleError('E_INVALID_ARGUMENT', `rerank: images must be uint8 [n, ${S}, ${S}, 3]`);
  const n = images.length / per;
  if (!(Number.isInteger(keep) && keep >= 1)) throw new DalleError('E_INVALID_ARGUMENT', `rerank: keep must be a positive integer, got ${String(keep)}`);
  const run = options.run ?? asyncRunner;
  const batch = options.batch ?? 64;
  const textEmb = await model.encodeText(text, run);
  const scores = new Float64Array(n);
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    const emb = await model.encodeImages(images.subarray(start * per, end * per), run);
    const cos = cosineMatrix(textEmb, emb, E);
    for (let i = start; i < end; i++) scores[i] = cos[i - start]!;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, keep);
  return { order, scores: order.map((i) => scores[i]!) };
}
