/**
 * What every `dalle train*` command shares: where data comes from (`--data`), the progress bar, the HTML report, the
 * checkpoint that Ctrl-C leaves behind and `--resume` continues from, and hooks that run between updates.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { unpackBatch } from '../data/batch.js';
import { createLoader, type Loader } from '../data/loader.js';
import type { Preset } from '../data/preprocess.js';
import { CAPABILITIES, type Capability } from '../data/shapes/index.js';
import type { SourceSpec } from '../data/source.js';
import type { Batch, Example, SkipReport } from '../data/types.js';
import { DalleError } from '../errors.js';
import { syncRunner } from '../nn/runner.js';
import { TrainingReport } from '../train/report.js';
import type { StepMetrics, TrainerOptions, TrainProgress, TrainResult } from '../train/trainer.js';
import { prepareOutputFile } from './files.js';
import { abortOnCtrlC, EXIT_INTERRUPTED } from './interrupt.js';
import { intOption, listOf, numberOption } from './options.js';
import { Progress } from './progress.js';

export interface CommonTrainFlags {
  data: string;
  evalData?: string;
  capabilities?: Capability[];
  scenes: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  seed: number;
  out: string;
  checkpoint?: string;
  checkpointEvery: number;
  resume?: boolean;
  report?: string;
  sampleEvery?: number;
  workers: number;
}

/** The options that say where examples come from (training commands and `tokenizer train`). */
export function addDataOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--data <source>', "'shapes', 'emoji', a folder of image+caption pairs, a .jsonl manifest, or .tar shards (comma-separated); mix sources with + and weigh them with * (shapes*3+emoji)")
    .option('--eval-data <source>', 'held-out data (shapes and emoji hold out their test split already)')
    .option('--capabilities <list>', `shapes scene kinds: some of ${CAPABILITIES.join(',')}`, listOf(CAPABILITIES))
    .option('--scenes <n>', 'shapes scenes to train on', intOption(1), 20000)
    .option('--seed <n>', 'seed of initialisation, data order and noise', intOption(0), 1)
    .option('--workers <n>', 'data loader threads', intOption(1, 64), 1);
}

/** Adds the options every training command takes; `defaults` sets the per-model ones. */
export function addTrainOptions(cmd: Command, defaults: { steps: number; batch: number; lr: number; warmup: number }): Command {
  return addDataOptions(cmd)
    .option('--steps <n>', 'updates in all (a resumed run continues to the same total)', intOption(1), defaults.steps)
    .option('--batch <n>', 'examples per update', intOption(1), defaults.batch)
    .option('--lr <rate>', 'peak learning rate (cosine decay after it)', numberOption(0, 1, true), defaults.lr)
    .option('--warmup <n>', 'updates of linear learning-rate warm-up', intOption(0), defaults.warmup)
    .requiredOption('-o, --out <file>', 'where the trained weights go (.safetensors)')
    .option('--checkpoint <file>', 'checkpoint path (default: <out minus .safetensors>.checkpoint.safetensors)')
    .option('--checkpoint-every <n>', 'also checkpoint every n updates (one is always written at the end or on Ctrl-C)', intOption(0), 500)
    .option('--resume', 'continue from the checkpoint')
    .option('--report <file>', 'the HTML training report (default: <out minus .safetensors>.report.html)')
    .option('--sample-every <n>', 'add a sample grid to the report every n updates (default: steps / 8)', intOption(1));
}

/**
 * The source spec a `--data` value names. `a+b` mixes sources evenly; `a*3+b` weights them (3 of a for each of b), so
 * sources of different sizes can be made to run out together.
 */
export function sourceFor(value: string, size: number, flags: Pick<CommonTrainFlags, 'scenes' | 'seed' | 'capabilities'>, split: 'train' | 'test'): SourceSpec {
  if (value.includes('+')) {
    const parts = value.split('+').map((part) => {
      const m = /^(.*)\*([0-9.]+)$/.exec(part);
      const weight = m ? Number(m[2]) : 1;
      if (!(weight > 0 && Number.isFinite(weight))) throw new DalleError('E_INVALID_ARGUMENT', `--data ${value}: the weight of ${part} must be a positive number`);
      return { spec: sourceFor(m ? m[1]! : part, size, flags, split), weight };
    });
    return { kind: 'mix', sources: parts.map((p) => p.spec), weights: parts.map((p) => p.weight) };
  }
  if (value === 'shapes') {
    return { kind: 'shapes', size, count: split === 'train' ? flags.scenes : 64, split, seed: split === 'train' ? flags.seed : 77, ...(flags.capabilities ? { capabilities: flags.capabilities } : {}) };
  }
  if (value === 'emoji') return { kind: 'emoji', split, seed: flags.seed };
  const paths = value.split(',').map((p) => resolve(p));
  if (paths.length > 1 || paths[0]!.endsWith('.tar')) return { kind: 'webdataset', shards: paths };
  const path = paths[0]!;
  if (!existsSync(path)) throw new DalleError('E_NOT_FOUND', `--data ${value}: no such file or folder`);
  if (statSync(path).isDirectory()) return { kind: 'folder', path };
  if (path.endsWith('.jsonl')) return { kind: 'jsonl', path };
  throw new DalleError('E_INVALID_ARGUMENT', `--data ${value}: expected shapes, emoji, a folder, a .jsonl manifest or .tar shards`);
}

export interface TrainingData {
  /** Batches of one epoch, preprocessed with `preset` at `size` pixels in loader workers. */
  batches: (epoch: number) => AsyncIterable<Batch>;
  /** Up to `count` held-out examples (fixed), or [] without held-out data. */
  heldOut: (count: number) => Promise<Example[]>;
  describe: string;
  /** The inputs the training data skipped (bad images, missing captions): the most any one epoch's loader counted. */
  skipped: () => SkipReport;
}

/** One line for the user: how many inputs were skipped, why, and a few of them to look at. */
export function describeSkipped(report: SkipReport): string {
  const reasons = Object.entries(report.reasons).map(([reason, n]) => `${n} ${reason}`).join(', ');
  const examples = report.samples.slice(0, 3).map((s) => s.key).join(', ');
  return `skipped ${report.skipped} input${report.skipped === 1 ? '' : 's'} of the data (${reasons}${examples ? `; e.g. ${examples}` : ''})`;
}

export function trainingData(flags: CommonTrainFlags, size: number, preset: Preset, signal: AbortSignal): TrainingData {
  const train = sourceFor(flags.data, size, flags, 'train');
  const builtIn = flags.data.split('+').every((part) => /^(shapes|emoji)(\*[0-9.]+)?$/.test(part));
  const evalValue = flags.evalData ?? (builtIn ? flags.data : undefined);
  const held = evalValue === undefined ? null : sourceFor(evalValue, size, flags, evalValue === flags.data ? 'test' : 'train');
  const loader = (spec: SourceSpec, epoch: number, batchSize: number, augment: boolean) =>
    createLoader(spec, { batchSize, size, preset: augment ? preset : 'transformer', seed: flags.seed, epoch, workers: flags.workers, signal });
  const trainLoaders: Loader[] = [];
  return {
    batches: (epoch) => {
      const epochLoader = loader(train, epoch, flags.batch, true);
      trainLoaders.push(epochLoader);
      return epochLoader;
    },
    // Every epoch reads the same files, so the fullest epoch's count is the number of bad inputs.
    skipped: () => trainLoaders.map((l) => l.skipped).reduce((most, r) => (r.skipped > most.skipped ? r : most), { skipped: 0, reasons: {}, samples: [] }),
    heldOut: async (count) => {
      if (held === null) return [];
      const out: Example[] = [];
      for await (const b of loader(held, 0, Math.min(count, 64), false)) {
        out.push(...unpackBatch(b));
        if (out.length >= count) break;
      }
      return out.slice(0, count);
    },
    describe: `${flags.data}${flags.capabilities ? ` (${flags.capabilities.join(', ')})` : ''}${evalValue ? `; held out: ${evalValue}${evalValue === flags.data ? ' test split' : ''}` : ''}`,
  };
}

/** The held-out loss, and the reconstruction PSNR where the task measures one (the dVAE's). */
function heldOutText(m: StepMetrics): string {
  return `${m.loss.toFixed(4)}${m.psnr === undefined ? '' : `, ${m.psnr.toFixed(2)} dB`}`;
}

export interface TrainingSession {
  report: TrainingReport;
  /** The trainer options every command passes: op runner, signal, progress, checkpoint, resume. */
  trainer: Pick<TrainerOptions<unknown>, 'run' | 'signal' | 'onProgress' | 'progressEvery' | 'checkpoint' | 'resumeFrom'>;
  /**
   * Wraps an epoch's batches: between updates it lets the event loop run (so Ctrl-C is seen even when ops run
   * synchronously) and adds a sample grid to the report when one is due.
   */
  between<B>(batches: AsyncIterable<B>): AsyncIterable<B>;
}

/**
 * The files a training command writes (weights, checkpoint, report), their folders created and checked writable:
 * called when a command starts, so a bad -o fails before data is read, and again by runTraining.
 */
export function trainingOutputs(flags: Pick<CommonTrainFlags, 'out' | 'checkpoint' | 'report' | 'resume'>): { out: string; checkpoint: string; reportPath: string } {
  const out = prepareOutputFile(flags.out, '-o');
  const base = out.replace(/\.safetensors$/, '');
  const checkpoint = prepareOutputFile(flags.checkpoint ?? `${base}.checkpoint.safetensors`, '--checkpoint');
  if (flags.resume && !existsSync(checkpoint)) throw new DalleError('E_NOT_FOUND', `--resume: no checkpoint at ${checkpoint}`);
  return { out, checkpoint, reportPath: prepareOutputFile(flags.report ?? `${base}.report.html`, '--report') };
}

/**
 * Runs one training command: progress bar, report, checkpoint, Ctrl-C. `sample(step)` draws the report's grid (it runs
 * between updates, on the current parameters). Resolves with the exit status.
 */
export async function runTraining(
  flags: CommonTrainFlags,
  header: { title: string; facts: Record<string, string | number>; checkpointMetadata?: Record<string, string>; data?: Pick<TrainingData, 'skipped'> },
  sample: (step: number, report: TrainingReport) => Promise<void>,
  train: (session: TrainingSession) => Promise<TrainResult>,
  save: (result: TrainResult) => Promise<void>,
): Promise<number> {
  const { out, checkpoint, reportPath } = trainingOutputs(flags);
  const report = new TrainingReport(reportPath, { title: header.title, facts: { ...header.facts, output: out, checkpoint } }, { resume: flags.resume });
  const controller = new AbortController();
  const stopListening = abortOnCtrlC(controller, 'stopping after this update; writing a checkpoint… (Ctrl-C again to quit at once)');
  const sampleEvery = flags.sampleEvery ?? Math.max(1, Math.round(flags.steps / 8));
  const progress = new Progress('training', flags.steps, 'updates');
  let step = 0;
  let nextSample = 0;
  const onProgress = (p: TrainProgress): void => {
    step = p.step;
    progress.update(p.step, `loss ${p.metrics.loss.toFixed(4)}${p.evalMetrics ? ` (held out ${heldOutText(p.evalMetrics)})` : ''}`);
    report.progress(p);
  };
  const session: TrainingSession = {
    report,
    trainer: {
      // Synchronous ops: the trainer's loop is the only work, and `between` yields to the event loop every update.
      run: syncRunner,
      signal: controller.signal,
      onProgress,
      progressEvery: 1,
      checkpoint: { path: checkpoint, every: flags.checkpointEvery || undefined, ...(header.checkpointMetadata ? { metadata: header.checkpointMetadata } : {}) },
      resumeFrom: flags.resume ? checkpoint : undefined,
    },
    between: <B>(batches: AsyncIterable<B>) =>
      (async function* () {
        for await (const b of batches) {
          await new Promise((r) => setImmediate(r));
          if (step >= nextSample && !controller.signal.aborted) {
            await sample(step, report);
            nextSample = step - (step % sampleEvery) + sampleEvery;
          }
          yield b;
        }
      })(),
  };
  try {
    const result = await train(session);
    progress.stop();
    if (result.stopped === 'aborted') {
      report.write(`stopped at update ${result.steps} of ${flags.steps}`);
      process.stderr.write(`dalle: stopped at update ${result.steps} of ${flags.steps}; checkpoint ${result.checkpoint}. Run the same command with --resume to continue.\n`);
      return EXIT_INTERRUPTED;
    }
    await sample(result.steps, report);
    await save(result);
    const skipped = header.data?.skipped();
    if (skipped && skipped.skipped > 0) process.stderr.write(`dalle: ${describeSkipped(skipped)}\n`);
    report.write(skipped && skipped.skipped > 0 ? `done; ${describeSkipped(skipped)}` : 'done');
    const held = result.evalMetrics ? `, held-out loss ${heldOutText(result.evalMetrics)}` : '';
    process.stdout.write(`trained ${result.steps} updates: loss ${result.metrics?.loss.toFixed(4) ?? '—'}${held}; wrote ${out} and ${report.path}\n`);
    return 0;
  } catch (err) {
    progress.stop();
    try {
      report.write(`failed: ${(err as Error).message}`);
    } catch {
      // the training error is the one to report
    }
    throw err;
  } finally {
    stopListening();
  }
}
