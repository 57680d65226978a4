/**
 * The trainer every model shares: AdamW over one flat parameter arena, a cosine learning rate, optional gradient
 * clipping, a parameter EMA, progress events, an AbortSignal that stops between steps, and checkpoints that resume
 * exactly (parameters, EMA, Adam moments, the step, and where in which epoch the data was).
 *
 * A model plugs in as a TrainTask: it computes a batch's loss and writes the gradients; everything else is here.
 */
import { Arena } from '../engine.js';
import { DalleError } from '../errors.js';
import { type OpRunner, asyncRunner, run1 } from '../nn/runner.js';
import { Tensor } from '../tensor.js';
import { type CheckpointState, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { checkSchedule, type CosineSchedule, cosineAt } from './schedule.js';

export type StepMetrics = Record<string, number> & { loss: number };

export interface TrainTask<B> {
  /** A short name stored in checkpoints ('dvae', 'transformer', 'clip'); a checkpoint of another task is refused. */
  readonly kind: string;
  readonly params: Arena;
  /** JSON configuration stored in checkpoints; resuming checks it matches. */
  readonly configJson: string;
  /** The loss on `batch` at update `step` (0-based), with the gradients written into `grads` (same names as params). */
  step(batch: B, grads: Arena, step: number, run: OpRunner): Promise<StepMetrics>;
  /** Examples in a batch, for the rate shown in progress. */
  batchSize(batch: B): number;
  /**
   * The loss on a held-out batch, without gradients (needed for `TrainerOptions.eval`), after `step` updates (for
   * objectives with schedules of their own).
   */
  evalLoss?(batch: B, run: OpRunner, step: number): Promise<StepMetrics>;
}

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface TrainProgress {
  /** Updates done so far (1-based after the first). */
  step: number;
  steps: number;
  epoch: number;
  metrics: StepMetrics;
  lr: number;
  gradNorm: number;
  /** Updates skipped because the gradient was not finite. */
  skippedSteps: number;
  /** The latest held-out metrics (means over the eval batches), when `eval` is set and has run. */
  evalMetrics?: StepMetrics;
  /** The update after which `evalMetrics` were measured (they repeat in the events until the next evaluation). */
  evalStep?: number;
  elapsedSeconds: number;
  stepsPerSecond: number;
  examplesPerSecond: number;
  etaSeconds: number;
}

export interface TrainerOptions<B> {
  /** Total updates of the run (a resumed run continues to the same total). */
  steps: number;
  /** Batches of one epoch; called again for the next epoch, with its number, when one runs out. */
  data: (epoch: number) => AsyncIterable<B>;
  lr: CosineSchedule;
  /**
   * Ramp the learning rate linearly up to the schedule's value over the first this many updates (update i gets
   * (i+1)/N of it). The DALL·E transformer warms up over 5000; the dVAE has no warm-up in the paper, but a short one
   * keeps a small dVAE alive at learning rates that otherwise kill its ReLUs in the first updates. Default 0.
   */
  lrWarmupSteps?: number;
  adam?: Partial<AdamWConfig>;
  /** Parameter EMA decay, e.g. 0.999; null for none. Default null. */
  emaDecay?: number | null;
  /** Clip the global gradient norm to this; null for none (default). */
  clipGradNorm?: number | null;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /** Progress every this many updates (and at the last). Default 10. */
  progressEvery?: number;
  /**
   * Held-out evaluation: every `every` updates (and after the last) the mean of the task's evalLoss over the batches
   * `data()` yields; reported in progress and the result. The batches should be a fixed set, so figures compare.
   * With `emaDecay`, the EMA weights are evaluated: they are what a run saves, so the held-out figures are the model's.
   */
  eval?: { every: number; data: () => AsyncIterable<B> };
  /**
   * Where to save checkpoints; with `every`, also every that many updates. One is always written at the end or on abort.
   * `metadata` rides along in the file's `__metadata__` (a tokenizer, so the checkpoint also loads as weights).
   */
  checkpoint?: { path: string; every?: number; metadata?: Record<string, string> };
  /** Continue from this checkpoint (written by a trainer of the same task and config). */
  resumeFrom?: string;
  /** How ops run: asyncRunner (default) keeps the event loop free between ops. */
  run?: OpRunner;
}

export interface TrainResult {
  /** Updates done in total, including those before a resume. */
  steps: number;
  stopped: 'done' | 'aborted';
  metrics: StepMetrics | null;
  /** The last held-out metrics, when `eval` was set. */
  evalMetrics: StepMetrics | null;
  skippedSteps: number;
  checkpoint: string | null;
  /**
   * The parameter EMA at the end (null without one), laid out like `task.params.flat`: evaluate or save it with
   * `model.params.flat.write(result.ema)`. The live parameters stay the raw ones, so training can continue.
   */
  ema: Float32Array | null;
}

const ADAM_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/** Training state beside the parameters: gradients, Adam moments and the EMA, each one arena of the same table. */
export class TrainState implements Disposable {
  readonly grads: Arena;
  readonly m: Arena;
  readonly v: Arena;
  readonly ema: Arena | null;

  constructor(params: Arena, withEma: boolean) {
    const specs = [...params.tensors].map(([name, t]) => ({ name, shape: t.shape }));
    this.grads = new Arena(specs);
    this.m = new Arena(specs);
    this.v = new Arena(specs);
    this.ema = withEma ? new Arena(specs) : null;
    this.ema?.flat.write(params.flat.toFloat32Array());
  }

  dispose(): void {
    for (const a of [this.grads, this.m, this.v, this.ema]) a?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function checkOptions<B>(o: TrainerOptions<B>): void {
  const bad = (msg: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `trainer: ${msg}`);
  };
  if (!Number.isInteger(o.steps) || o.steps < 0) bad(`steps must be an integer ≥ 0, got ${String(o.steps)}`);
  if (typeof o.data !== 'function') bad('data must be a function from the epoch number to batches');
  checkSchedule('lr', o.lr);
  if (o.lrWarmupSteps !== undefined && !(Number.isInteger(o.lrWarmupSteps) && o.lrWarmupSteps >= 0)) bad(`lrWarmupSteps must be an integer ≥ 0, got ${String(o.lrWarmupSteps)}`);
  if (o.emaDecay != null && !(o.emaDecay >= 0 && o.emaDecay < 1)) bad(`emaDecay must be in [0, 1), got ${o.emaDecay}`);
  if (o.clipGradNorm != null && !(o.clipGradNorm > 0)) bad(`clipGradNorm must be > 0, got ${o.clipGradNorm}`);
  if (o.progressEvery !== undefined && !(Number.isInteger(o.progressEvery) && o.progressEvery > 0)) bad('progressEvery must be a positive integer');
  if (o.eval !== undefined && !(Number.isInteger(o.eval.every) && o.eval.every > 0 && typeof o.eval.data === 'function')) bad('eval must be { every: a positive integer, data: a function returning batches }');
  if (o.checkpoint?.every !== undefined && !(Number.isInteger(o.checkpoint.every) && o.checkpoint.every > 0)) bad('checkpoint.every must be a positive integer');
}

/** Batches in order across epochs, able to start at (epoch, index) for a resume. */
class BatchStream<B> {
  epoch: number;
  index: number;
  private it: AsyncIterator<B> | null = null;

  constructor(private readonly data: (epoch: number) => AsyncIterable<B>, epoch: number, index: number) {
    this.epoch = epoch;
    this.index = index;
  }

  async next(): Promise<B> {
    for (;;) {
      if (this.it === null) {
        this.it = this.data(this.epoch)[Symbol.asyncIterator]();
        // A resume re-reads the epoch up to where the checkpoint was taken (the loader is seeded, so it is the same data).
        for (let i = 0; i < this.index; i++) if ((await this.it.next()).done) break;
      }
      const r = await this.it.next();
      if (!r.done) {
        this.index++;
        return r.value;
      }
      if (this.index === 0) {
        throw new DalleError('E_INVALID_ARGUMENT', 'trainer: the data yielded no batches (an empty dataset, or every example skipped)');
      }
      this.it = null;
      this.epoch++;
      this.index = 0;
    }
  }

  async close(): Promise<void> {
    await this.it?.return?.();
  }
}

/** Runs `task` for `options.steps` updates; resolves (does not reject) when aborted, after writing a checkpoint. */
export async function train<B>(task: TrainTask<B>, options: TrainerOptions<B>): Promise<TrainResult> {
  checkOptions(options);
  if (options.eval && !task.evalLoss) throw new DalleError('E_INVALID_ARGUMENT', `trainer: the ${task.kind} task cannot evaluate held-out batches`);
  const run = options.run ?? asyncRunner;
  const adam = { ...ADAM_DEFAULTS, ...options.adam };
  const every = options.progressEvery ?? 10;
  using state = new TrainState(task.params, options.emaDecay != null);
  let progressState: CheckpointState = { step: 0, epoch: 0, batchInEpoch: 0, skippedSteps: 0 };
  if (options.resumeFrom !== undefined) progressState = readCheckpoint(options.resumeFrom, task, state);

  const data = new BatchStream(options.data, progressState.epoch, progressState.batchInEpoch);
  let step = progressState.step;
  let skipped = progressState.skippedSteps;
  let metrics: StepMetrics | null = null;
  let evalMetrics: StepMetrics | null = null;
  let evalStep = 0;
  let stopped: TrainResult['stopped'] = 'done';
  let checkpoint: string | null = null;
  const save = async (): Promise<void> => {
    if (!options.checkpoint) return;
    checkpoint = await writeCheckpoint(options.checkpoint.path, task, state, { step, epoch: data.epoch, batchInEpoch: data.index, skippedSteps: skipped }, options.checkpoint.metadata);
  };

  const t0 = performance.now();
  const firstStep = step;
  let examples = 0;
  try {
    while (step < options.steps) {
      if (options.signal?.aborted) {
        stopped = 'aborted';
        break;
      }
      const batch = await data.next();
      metrics = await task.step(batch, state.grads, step, run);
      examples += task.batchSize(batch);
      const lr = learningRateAt(options, step);
      const gradNorm = await globalNorm(run, state.grads.flat, options.clipGradNorm ?? null);
      if (Number.isFinite(gradNorm) && Number.isFinite(metrics.loss)) {
        await run('adamw_step', [task.params.flat, state.grads.flat, state.m.flat, state.v.flat], {
          lr,
          step: step + 1 - skipped,
          beta1: adam.beta1,
          beta2: adam.beta2,
          eps: adam.eps,
          weight_decay: adam.weightDecay,
        });
        if (state.ema) await run('ema_update', [state.ema.flat, task.params.flat], { decay: options.emaDecay! });
      } else {
        skipped++;
      }
      step++;
      if (options.eval && (step % options.eval.every === 0 || step === options.steps)) {
        evalMetrics = await withWeights(task.params, state.ema, () => evaluate(task, options.eval!.data(), run, step));
        evalStep = step;
      }
      if (options.onProgress && (step % every === 0 || step === options.steps)) {
        const elapsed = (performance.now() - t0) / 1000;
        const rate = (step - firstStep) / elapsed;
        options.onProgress({
          step,
          steps: options.steps,
          epoch: data.epoch,
          metrics,
          lr,
          gradNorm,
          skippedSteps: skipped,
          ...(evalMetrics ? { evalMetrics, evalStep } : {}),
          elapsedSeconds: elapsed,
          stepsPerSecond: rate,
          examplesPerSecond: examples / elapsed,
          etaSeconds: (options.steps - step) / rate,
        });
      }
      if (options.checkpoint?.every && step % options.checkpoint.every === 0 && step < options.steps) await save();
    }
    await save();
  } finally {
    await data.close();
  }
  return { steps: step, stopped, metrics, evalMetrics, skippedSteps: skipped, checkpoint, ema: state.ema?.flat.toFloat32Array() ?? null };
}

/** The learning rate of update `step` (0-based): the cosine schedule, scaled down during the warm-up. */
export function learningRateAt(o: Pick<TrainerOptions<unknown>, 'lr' | 'lrWarmupSteps'>, step: number): number {
  const warmup = o.lrWarmupSteps ?? 0;
  return cosineAt(o.lr, step) * (step < warmup ? (step + 1) / warmup : 1);
}

/** `fn` run with `weights` (an arena laid out like `params`, or null: params as they are) in place of `params`. */
async function withWeights<T>(params: Arena, weights: Arena | null, fn: () => Promise<T>): Promise<T> {
  if (weights === null) return fn();
  const live = params.flat.toFloat32Array();
  params.flat.write(weights.flat.toFloat32Array());
  try {
    return await fn();
  } finally {
    params.flat.write(live);
  }
}

/** Means of the task's held-out metrics over `batches`, weighted by batch size. */
async function evaluate<B>(task: TrainTask<B>, batches: AsyncIterable<B>, run: OpRunner, step: number): Promise<StepMetrics> {
  const sums: Record<string, number> = {};
  let examples = 0;
  for await (const batch of batches) {
    const n = task.batchSize(batch);
    const m = await task.evalLoss!(batch, run, step);
    for (const [k, v] of Object.entries(m)) sums[k] = (sums[k] ?? 0) + n * v;
    examples += n;
  }
  if (examples === 0) throw new DalleError('E_INVALID_ARGUMENT', 'trainer: the eval data yielded no batches');
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(sums)) out[k] = v / examples;
  return out as StepMetrics;
}

/** The gradient's global L2 norm, clipping in place when `maxNorm` is set. */
async function globalNorm(run: OpRunner, grads: Tensor, maxNorm: number | null): Promise<number> {
  const t = maxNorm === null ? await run1(run, 'grad_norm', [grads]) : await run1(run, 'clip_grad_norm', [grads], { max_norm: maxNorm });
  try {
    return t.toFloat32Array()[0]!;
  } finally {
    t.dispose();
  }
}
