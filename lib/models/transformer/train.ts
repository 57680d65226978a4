/**
 * Training the transformer with the shared trainer, on image–caption pairs turned into tokens once: captions stay
 * text (BPE-dropout needs a fresh encoding every time a caption is seen), images become dVAE codes (the argmax of the
 * encoder logits, no noise: App. B / fn 6). Defaults are the paper's (App. B.2): AdamW (0.9, 0.96, 1e-8, weight decay
 * 4.5e-2), gradient norm clipped at 4, a linear warm-up over 5000 updates to 4.5e-4, then a decay to 1/32 of it
 * (the paper halves on plateaus five times; here a cosine to the same end), BPE-dropout 0.1.
 */
import type { Arena } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { packBatch } from '../../data/batch.js';
import type { Example } from '../../data/types.js';
import { asyncRunner, type OpRunner } from '../../nn/runner.js';
import { mixSeed, mulberry32 } from '../../data/shapes/rng.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import type { CosineSchedule } from '../../train/schedule.js';
import { type AdamWConfig, type StepMetrics, train, type TrainerOptions, type TrainResult, type TrainTask } from '../../train/trainer.js';
import type { Dvae } from '../dvae/model.js';
import type { DalleTransformer } from './model.js';

export const TRANSFORMER_PAPER_ADAM: AdamWConfig = { beta1: 0.9, beta2: 0.96, eps: 1e-8, weightDecay: 4.5e-2 };
export const TRANSFORMER_PAPER_LR = { peak: 4.5e-4, warmupSteps: 5000, endFraction: 1 / 32 } as const;

/** A batch as the transformer trains on it: text slots (−1 = empty, becomes the slot's pad) and dVAE codes. */
export interface TextCodeBatch {
  /** i32 [B·T]. */
  text: Int32Array;
  /** i32 [B·W²]. */
  codes: Int32Array;
}

/** Captions and the dVAE codes of their images, made once for a dataset. */
export interface EncodedDataset {
  captions: string[];
  /** i32 [n·W²], row-major per image. */
  codes: Int32Array;
  /** W² per image. */
  imageLen: number;
}

/** Encodes examples' images with the dVAE (argmax codes), `batch` at a time. */
export async function encodeDataset(dvae: Dvae, examples: Iterable<Example> | AsyncIterable<Example>, options: { batch?: number; run?: OpRunner } = {}): Promise<EncodedDataset> {
  const batch = options.batch ?? 64;
  const side = dvae.config.imageSize;
  const imageLen = dvae.grid * dvae.grid;
  const captions: string[] = [];
  const chunks: Int32Array[] = [];
  let pending: Example[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    for (const e of pending) {
      if (e.image.width !== side || e.image.height !== side) {
        throw new DalleError('E_INVALID_ARGUMENT', `example ${e.key} is ${e.image.width}×${e.image.height}; the dVAE takes ${side}×${side}`);
      }
    }
    chunks.push(await dvae.encode(packBatch(pending, side).images, options.run ?? asyncRunner));
    captions.push(...pending.map((e) => e.caption));
    pending = [];
  };
  for await (const e of examples) {
    pending.push(e);
    if (pending.length === batch) await flush();
  }
  await flush();
  const codes = new Int32Array(captions.length * imageLen);
  let at = 0;
  for (const c of chunks) {
    codes.set(c, at);
    at += c.length;
  }
  return { captions, codes, imageLen };
}

/** Text slots i32 [T] for a caption: its BPE ids, cut to T, then −1 (pads). */
export function textSlots(tokenizer: BpeTokenizer, caption: string, textLen: number, encode: { dropout?: number; seed?: number } = {}): Int32Array {
  const { ids } = tokenizer.fit(tokenizer.encode(caption, encode), textLen);
  const out = new Int32Array(textLen).fill(-1);
  out.set(ids);
  return out;
}

export interface BatchOptions {
  batchSize: number;
  textLen: number;
  /** BPE-dropout probability while training; default 0.1 (the paper's). */
  dropout?: number;
  /** Shuffle order and dropout: epoch e of seed s is always the same batches. */
  seed?: number;
  /** Keep the dataset's order (held-out evaluation). */
  shuffle?: boolean;
  /** Drop a last short batch; default true. */
  dropLast?: boolean;
}

/** The batches of one epoch of `data`, shuffled per (seed, epoch), with fresh BPE-dropout per (seed, epoch, example). */
export async function* textCodeBatches(data: EncodedDataset, tokenizer: BpeTokenizer, epoch: number, o: BatchOptions): AsyncGenerator<TextCodeBatch> {
  const n = data.captions.length;
  const { batchSize: B, textLen: T } = o;
  const N = data.imageLen;
  const seed = o.seed ?? 0;
  const order = Array.from({ length: n }, (_, i) => i);
  if (o.shuffle ?? true) {
    const rand = mulberry32(mixSeed(seed, epoch));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  const dropout = o.dropout ?? 0.1;
  const stop = o.dropLast ?? true ? n - (n % B) : n;
  for (let start = 0; start < stop; start += B) {
    const idx = order.slice(start, Math.min(start + B, n));
    const text = new Int32Array(idx.length * T);
    const codes = new Int32Array(idx.length * N);
    idx.forEach((k, i) => {
      text.set(textSlots(tokenizer, data.captions[k]!, T, { dropout, seed: mixSeed(mixSeed(seed, epoch), k) }), i * T);
      codes.set(data.codes.subarray(k * N, (k + 1) * N), i * N);
    });
    yield { text, codes };
  }
}

export class TransformerTask implements TrainTask<TextCodeBatch> {
  readonly kind = 'transformer';
  readonly params: Arena;
  readonly configJson: string;

  constructor(readonly model: DalleTransformer) {
    this.params = model.params;
    this.configJson = JSON.stringify(model.config);
  }

  async step(batch: TextCodeBatch, grads: Arena, _step: number, run: OpRunner): Promise<StepMetrics> {
    const l = await this.model.lossAndGrad(this.model.tokenBatch(batch.text, batch.codes), grads, run);
    return { loss: l.loss, textLoss: l.textLoss, imageLoss: l.imageLoss };
  }

  async evalLoss(batch: TextCodeBatch, run: OpRunner): Promise<StepMetrics> {
    const l = await this.model.loss(this.model.tokenBatch(batch.text, batch.codes), run);
    return { loss: l.loss, textLoss: l.textLoss, imageLoss: l.imageLoss };
  }

  batchSize(batch: TextCodeBatch): number {
    return batch.codes.length / this.model.seq.imageLen;
  }
}

export interface TransformerTrainOptions extends Omit<TrainerOptions<TextCodeBatch>, 'lr'> {
  /** Default: the paper's peak 4.5e-4 decaying (cosine) to 1/32 of it over the run, after lrWarmupSteps. */
  lr?: CosineSchedule;
}

/**
 * Trains `model` in place with the paper's optimizer (overridable). The default warm-up is 5000 updates, or a tenth
 * of a shorter run.
 */
export function trainTransformer(model: DalleTransformer, options: TransformerTrainOptions): Promise<TrainResult> {
  const { peak, warmupSteps, endFraction } = TRANSFORMER_PAPER_LR;
  const task = new TransformerTask(model);
  return train(task, {
    ...options,
    lr: options.lr ?? { from: peak, to: peak * endFraction, steps: options.steps },
    lrWarmupSteps: options.lrWarmupSteps ?? Math.min(warmupSteps, Math.ceil(options.steps / 10)),
    adam: { ...TRANSFORMER_PAPER_ADAM, ...options.adam },
    clipGradNorm: options.clipGradNorm === undefined ? 4 : options.clipGradNorm,
  });
}
