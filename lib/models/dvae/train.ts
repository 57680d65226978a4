/**
 * Training the dVAE with the shared trainer: the paper's objective and schedules (App. A.2) as defaults, every value
 * overridable. β ramps 0 → 6.6 over 5k updates, τ 1 → 1/16 over 150k, the learning rate 1e-4 → 1.25e-6 over 1.2M,
 * all cosine; AdamW (0.9, 0.999, 1e-8, weight decay 1e-4); parameter EMA 0.999.
 */
import type { Arena } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { unpackBatch } from '../../data/batch.js';
import type { Batch } from '../../data/types.js';
import type { OpRunner } from '../../nn/runner.js';
import { checkSchedule, type CosineSchedule, cosineAt } from '../../train/schedule.js';
import { type AdamWConfig, type StepMetrics, train, type TrainerOptions, type TrainResult, type TrainTask } from '../../train/trainer.js';
import { evaluateDvae } from './evaluate.js';
import type { Dvae } from './model.js';

export const DVAE_PAPER_SCHEDULES = {
  beta: { from: 0, to: 6.6, steps: 5_000 },
  tau: { from: 1, to: 1 / 16, steps: 150_000 },
  lr: { from: 1e-4, to: 1.25e-6, steps: 1_200_000 },
} as const satisfies Record<string, CosineSchedule>;

export const DVAE_PAPER_ADAM: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 };

export interface DvaeTrainOptions extends Omit<TrainerOptions<Batch>, 'lr' | 'data'> {
  /** Batches of packed uint8 images [B, S, S, 3] (the data loader's, with the 'dvae' preset). */
  data: (epoch: number) => AsyncIterable<Batch>;
  /** The largest batch the data gives: the Gumbel noise of update t uses words [t·B·g²·K, (t+1)·B·g²·K). */
  batchSize: number;
  beta?: CosineSchedule;
  tau?: CosineSchedule;
  lr?: CosineSchedule;
  /** Key of the Gumbel noise. Default 0. */
  seed?: number;
  /**
   * Not the paper's: for the first `steps` updates (Infinity: all of them) the reconstruction term is
   * weight·Σ(σ(μ) − x)² over mapped pixels (weight default 100) instead of the logit-Laplace NLL. Off by default.
   *
   * Why it exists: on flat-colour images (the shapes world's eight-colour palette) the logit-Laplace NLL has a stable
   * colour-blind state. Its optimal μ for a code is the per-channel median of the pixels the code covers, and the
   * median of a mixture of a few exact colours does not move when the mixture shifts a little, so a decoder that
   * paints every object the palette's median (brown) gives the encoder no reason to tell colours apart; ln b grows
   * on objects and shrinks to e⁻⁵ on the exact white background, which weighs outlines ~150× above colour. Measured
   * (PyTorch twin, small32, 2000 updates): logit-Laplace 19.7 dB with every object brown over every β, τ, K and
   * ln b variant tried; the squared error 27.3 dB with colours right (benchmarks/dvae/reference.py).
   */
  squaredError?: { steps: number; weight?: number };
}

export class DvaeTask implements TrainTask<Batch> {
  readonly kind = 'dvae';
  readonly params: Arena;
  readonly configJson: string;
  private readonly wordsPerStep: number;

  constructor(
    readonly model: Dvae,
    private readonly beta: CosineSchedule,
    private readonly tau: CosineSchedule,
    private readonly maxBatch: number,
    private readonly seed: number,
    private readonly squaredError?: { steps: number; weight: number },
  ) {
    this.params = model.params;
    this.configJson = JSON.stringify(model.config);
    this.wordsPerStep = maxBatch * model.grid * model.grid * model.config.vocabSize;
  }

  async step(batch: Batch, grads: Arena, step: number, run: OpRunner): Promise<StepMetrics> {
    const b = batch.captions.length;
    if (b > this.maxBatch) throw new DalleError('E_INVALID_ARGUMENT', `dVAE training: a batch of ${b} exceeds batchSize ${this.maxBatch}`);
    this.checkSize(batch);
    const o = this.objectiveAt(step);
    using x = this.model.pixelsTensor(batch.images);
    const l = await this.model.lossAndGrad(x, grads, { ...o, seed: this.seed, offset: step * this.wordsPerStep }, run);
    return { loss: l.loss, nll: l.nll, kl: l.kl, beta: o.beta, tau: o.tau };
  }

  /**
   * Held out: the objective at this point of the schedules, under fixed noise (stream word 0 of the key) so the curve
   * moves only with the weights; the PSNR of the argmax codes' reconstruction (what the transformer will see) and the
   * perplexity of those codes (codebook collapse shows here first). Takes a batch of any size, larger than
   * `batchSize` too: its noise is read from word 0 whatever the size.
   */
  async evalLoss(batch: Batch, run: OpRunner, step: number): Promise<StepMetrics> {
    this.checkSize(batch);
    using x = this.model.pixelsTensor(batch.images);
    const l = await this.model.loss(x, { ...this.objectiveAt(step), seed: this.seed, offset: 0 }, run);
    const e = await evaluateDvae(this.model, unpackBatch(batch), { batchSize: batch.captions.length, run });
    return { loss: l.loss, nll: l.nll, kl: l.kl, psnr: e.psnr, perplexity: e.usage.perplexity };
  }

  private objectiveAt(step: number): { beta: number; tau: number; squaredErrorWeight?: number } {
    const squaredErrorWeight = this.squaredError && step < this.squaredError.steps ? this.squaredError.weight : undefined;
    return { beta: cosineAt(this.beta, step), tau: cosineAt(this.tau, step), squaredErrorWeight };
  }

  private checkSize(batch: Batch): void {
    if (batch.size !== this.model.config.imageSize) {
      throw new DalleError('E_INVALID_ARGUMENT', `dVAE training: batches are ${batch.size}px but the model takes ${this.model.config.imageSize}px`);
    }
  }

  batchSize(batch: Batch): number {
    return batch.captions.length;
  }
}

/** Trains `model` in place; see DvaeTrainOptions. Resolves when done or aborted (with a checkpoint if configured). */
export function trainDvae(model: Dvae, options: DvaeTrainOptions): Promise<TrainResult> {
  if (!Number.isInteger(options.batchSize) || options.batchSize <= 0) {
    throw new DalleError('E_INVALID_ARGUMENT', `dVAE training: batchSize must be a positive integer, got ${String(options.batchSize)}`);
  }
  const beta = checkSchedule('beta', options.beta ?? DVAE_PAPER_SCHEDULES.beta);
  const tau = checkSchedule('tau', options.tau ?? DVAE_PAPER_SCHEDULES.tau);
  if (!(Math.min(tau.from, tau.to) > 0)) throw new DalleError('E_INVALID_ARGUMENT', 'dVAE training: tau must stay > 0');
  const se = options.squaredError;
  if (se !== undefined && !(se.steps >= 0 && (se.weight === undefined || (se.weight > 0 && Number.isFinite(se.weight))))) {
    throw new DalleError('E_INVALID_ARGUMENT', `dVAE training: squaredError needs steps ≥ 0 and a positive finite weight, got ${JSON.stringify(se)}`);
  }
  const squaredError = se && { steps: se.steps, weight: se.weight ?? 100 };
  const task = new DvaeTask(model, beta, tau, options.batchSize, options.seed ?? 0, squaredError);
  return train(task, {
    ...options,
    lr: options.lr ?? DVAE_PAPER_SCHEDULES.lr,
    adam: { ...DVAE_PAPER_ADAM, ...options.adam },
    emaDecay: options.emaDecay === undefined ? 0.999 : options.emaDecay,
  });
}
