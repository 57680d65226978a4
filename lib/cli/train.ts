/**
 * `dalle train-vae`, `dalle train` and `dalle train-clip`: the three stages of DALL·E trained on any source, each with
 * a progress bar, an HTML report (curves and sample grids), checkpoints, Ctrl-C → checkpoint, `--resume`.
 */
import type { Command } from 'commander';

import { packBatch, unpackBatch } from '../data/batch.js';
import { imageGrid } from '../data/grid.js';
import type { Example } from '../data/types.js';
import { DalleError } from '../errors.js';
import { cosineMatrix } from '../models/clip/loss.js';
import { loadClip, saveClip } from '../models/clip/io.js';
import { Clip, type ClipPreset, clipPreset } from '../models/clip/model.js';
import { type ClipBatch, trainClip } from '../models/clip/train.js';
import { loadDvae, saveDvae } from '../models/dvae/io.js';
import { Dvae } from '../models/dvae/model.js';
import { trainDvae } from '../models/dvae/train.js';
import { generateImages } from '../models/transformer/generate.js';
import { loadTransformer, saveTransformer } from '../models/transformer/io.js';
import { DalleTransformer } from '../models/transformer/model.js';
import { encodeDataset, textCodeBatches, textSlots, trainTransformer } from '../models/transformer/train.js';
import { syncRunner } from '../nn/runner.js';
import type { BpeTokenizer } from '../tokenizer/bpe.js';
import { loadHfJson, toHfJson } from '../tokenizer/formats.js';
import { trainBpe } from '../tokenizer/train.js';
import type { TrainingReport } from '../train/report.js';
import { intOption, numberOption } from './options.js';
import { addTrainOptions, type CommonTrainFlags, runTraining, trainingData, trainingOutputs } from './training.js';

// Sampling for the report runs between updates with the same synchronous runner as the trainer (TrainingSession.trainer).
const run = syncRunner;
const GRID = 8;

/** The held-out images on top, what the model made of them below (or beside each caption), scaled for the report. */
function sheet(rows: Uint8Array[][], size: number) {
  const cols = rows[0]!.length;
  return imageGrid(rows.flat(), size, { columns: cols, scale: Math.max(1, Math.round(64 / size)), gap: 2 });
}

interface VaeFlags extends CommonTrainFlags {
  init?: string;
  size: number;
  vocab?: number;
  hidden?: number;
  ema: number;
  clip: number;
  betaFrom: number;
  beta: number;
  betaSteps?: number;
  tauSteps?: number;
  mseSteps: number;
}

interface TransformerFlags extends CommonTrainFlags {
  init?: string;
  dvae: string;
  tokenizer?: string;
  vocab: number;
  layers: number;
  width: number;
  textLength: number;
}

interface ClipFlags extends CommonTrainFlags {
  init?: string;
  tokenizer?: string;
  vocab: number;
  preset: ClipPreset;
  size: number;
  textLength?: number;
}

/**
 * The tokenizer --tokenizer names, read when the command starts (before the data is read or encoded, which can take
 * minutes, so a wrong path fails at once); null when the tokenizer comes from --init or is trained on the captions.
 */
function givenTokenizer(flags: { tokenizer?: string; init?: string }): BpeTokenizer | null {
  return flags.tokenizer !== undefined && flags.init === undefined ? loadHfJson(flags.tokenizer) : null;
}

/** A tokenizer trained on the data's captions (deterministic: a resumed run gets the same). */
async function tokenizerFor(flags: { vocab: number }, captions: () => AsyncIterable<string>): Promise<BpeTokenizer> {
  const corpus: string[] = [];
  for await (const c of captions()) if (corpus.push(c) >= 20000) break;
  if (corpus.length === 0) throw new DalleError('E_INVALID_ARGUMENT', 'the training data has no captions to train a tokenizer on');
  return trainBpe(corpus, { vocabSize: flags.vocab });
}

async function* captionsOf(batches: AsyncIterable<{ captions: string[] }>): AsyncGenerator<string> {
  for await (const b of batches) yield* b.captions;
}

const INIT_HELP = 'fine-tune these weights (a file this command wrote, or a checkpoint) instead of random ones; the architecture and tokenizer come from the file';

/** With --init the architecture comes from the weights, so the flags that would set it are refused, not ignored. */
function refuseArchitectureFlags(cmd: Command, init: string | undefined, keys: string[]): void {
  if (init === undefined) return;
  const given = keys.filter((k) => cmd.getOptionValueSource(k) === 'cli').map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (given.length > 0) throw new DalleError('E_INVALID_ARGUMENT', `--init takes the architecture from ${init}: drop ${given.join(', ')}`);
}

/** The tokenizer of fine-tuned weights: the one they carry, or --tokenizer when they carry none (never a new one). */
function initTokenizer(init: string, carried: BpeTokenizer | null, flag: string | undefined, textVocab: number): BpeTokenizer {
  if (carried && flag) throw new DalleError('E_INVALID_ARGUMENT', `${init} carries its tokenizer: drop --tokenizer`);
  if (!carried && !flag) throw new DalleError('E_INVALID_ARGUMENT', `${init} carries no tokenizer: name the one it was trained with (--tokenizer)`);
  const tokenizer = carried ?? loadHfJson(flag!);
  if (tokenizer.vocabSize > textVocab) throw new DalleError('E_INVALID_ARGUMENT', `--tokenizer has ${tokenizer.vocabSize} ids but ${init} embeds only ${textVocab}`);
  return tokenizer;
}

export function registerTrainCommands(program: Command): void {
  addTrainOptions(program.command('train-vae').description('train the discrete VAE (stage one) on images'), { steps: 5000, batch: 16, lr: 4e-3, warmup: 300 })
    .option('--init <weights>', INIT_HELP)
    .option('--size <px>', 'image side: 32 (small32 preset) or 64 (small64)', intOption(32, 64), 32)
    .option('--vocab <k>', 'codebook size (default: the preset’s)', intOption(2))
    .option('--hidden <n>', 'width of the first group (default: the preset’s)', intOption(1))
    .option('--ema <decay>', 'parameter EMA, saved as the weights (0: none)', numberOption(0, 1), 0.99)
    .option('--clip <norm>', 'clip the gradient norm (0: no clipping)', numberOption(0, 1e9), 1)
    .option('--beta-from <b>', 'KL weight at the start', numberOption(0, 1e3), 1.5)
    .option('--beta <b>', 'KL weight at the end of its schedule', numberOption(0, 1e3), 0.1)
    .option('--beta-steps <n>', 'updates of the β schedule (default: all)', intOption(1))
    .option('--tau-steps <n>', 'updates of the τ schedule 1 → 1/16 (default: a third)', intOption(1))
    .option('--mse-steps <n>', 'updates trained with the squared error instead of logit-Laplace (default: all; see the README)', numberOption(0, Infinity), Infinity)
    .action(async (flags: VaeFlags, cmd: Command) => {
      refuseArchitectureFlags(cmd, flags.init, ['size', 'vocab', 'hidden']);
      trainingOutputs(flags);
      if (flags.size !== 32 && flags.size !== 64) throw new DalleError('E_INVALID_ARGUMENT', `--size must be 32 or 64, got ${flags.size}`);
      using model = flags.init
        ? loadDvae(flags.init)
        : Dvae.create({ preset: flags.size === 64 ? 'small64' : 'small32', ...(flags.vocab ? { vocabSize: flags.vocab } : {}), ...(flags.hidden ? { nHid: flags.hidden } : {}) }, { seed: flags.seed });
      const size = model.config.imageSize;
      const controller = new AbortController();
      const data = trainingData(flags, size, 'dvae', controller.signal);
      const heldBatch = packBatch(await data.heldOut(64), size);
      const held = unpackBatch(heldBatch).slice(0, GRID);
      const sample = async (step: number, report: TrainingReport): Promise<void> => {
        if (held.length === 0) return;
        const per = size * size * 3;
        const recon = await model.reconstruct(heldBatch.images.subarray(0, held.length * per), run);
        report.samples(step, sheet([held.map((e) => e.image.data), held.map((_, i) => recon.subarray(i * per, (i + 1) * per))], size), 'held-out images (top) and their reconstructions (bottom)');
      };
      process.exitCode = await runTraining(
        flags,
        { title: `dVAE training: ${flags.out}`, facts: { model: JSON.stringify(model.config), parameters: model.parameterCount, ...(flags.init ? { init: flags.init } : {}), data: data.describe, steps: flags.steps, batch: flags.batch }, data },
        sample,
        (s) =>
          trainDvae(model, {
            data: (epoch) => s.between(data.batches(epoch)),
            batchSize: flags.batch,
            steps: flags.steps,
            lr: { from: flags.lr, to: flags.lr / 80, steps: flags.steps },
            lrWarmupSteps: flags.warmup,
            clipGradNorm: flags.clip > 0 ? flags.clip : null,
            beta: { from: flags.betaFrom, to: flags.beta, steps: flags.betaSteps ?? flags.steps },
            tau: { from: 1, to: 1 / 16, steps: flags.tauSteps ?? Math.round(flags.steps / 3) },
            emaDecay: flags.ema > 0 ? flags.ema : null,
            squaredError: flags.mseSteps > 0 ? { steps: flags.mseSteps } : undefined,
            seed: flags.seed,
            ...(heldBatch.captions.length > 0 ? { eval: { every: Math.max(1, Math.round(flags.steps / 20)), data: async function* () { yield heldBatch; } } } : {}),
            ...s.trainer,
          }),
        async (result) => {
          if (result.ema) model.params.flat.write(result.ema);
          await saveDvae(model, flags.out);
        },
      );
      controller.abort(); // stops loader workers still prefetching
    });

  addTrainOptions(program.command('train').description('train the transformer (stage two) on captions and dVAE codes'), { steps: 3000, batch: 16, lr: 2e-3, warmup: 100 })
    .requiredOption('--dvae <file>', 'the trained dVAE (.safetensors) whose codes the transformer learns')
    .option('--init <weights>', INIT_HELP)
    .option('--tokenizer <file>', 'a tokenizer (tokenizer.json); default: trained on the captions')
    .option('--vocab <n>', 'BPE vocabulary when training the tokenizer', intOption(257), 512)
    .option('--layers <n>', 'transformer layers', intOption(1, 256), 4)
    .option('--width <n>', 'model width (64 per head)', intOption(64), 128)
    .option('--text-length <n>', 'text token slots', intOption(1, 1024), 16)
    .action(async (flags: TransformerFlags, cmd: Command) => {
      refuseArchitectureFlags(cmd, flags.init, ['layers', 'width', 'textLength', 'vocab']);
      if (flags.width % 64 !== 0) throw new DalleError('E_INVALID_ARGUMENT', `--width must be a multiple of 64 (heads of 64), got ${flags.width}`);
      trainingOutputs(flags);
      const fileTok = givenTokenizer(flags);
      using dvae = loadDvae(flags.dvae);
      // Loaded first, so a wrong file fails before the data is encoded.
      const init = flags.init ? loadTransformer(flags.init) : null;
      using initModel = init?.model;
      if (init && (init.model.config.grid !== dvae.grid || init.model.config.imageVocab !== dvae.config.vocabSize)) {
        throw new DalleError('E_INVALID_ARGUMENT', `${flags.init} predicts ${init.model.config.grid}² codes from ${init.model.config.imageVocab}, but --dvae makes ${dvae.grid}² from ${dvae.config.vocabSize}: name the dVAE it was trained with`);
      }
      const initTok = init ? initTokenizer(flags.init!, init.tokenizer, flags.tokenizer, init.model.config.textVocab) : null;
      const size = dvae.config.imageSize;
      const controller = new AbortController();
      const data = trainingData(flags, size, 'transformer', controller.signal);
      const encode = async (examples: AsyncIterable<Example> | Example[]) => encodeDataset(dvae, examples, { run });
      const train = await encode((async function* () { for await (const b of data.batches(0)) yield* unpackBatch(b); })());
      // The captions come from the encoded set: a second pass over the data would decode every image again.
      const tokenizer = initTok ?? fileTok ?? (await tokenizerFor(flags, async function* () { yield* train.captions; }));
      const heldExamples = await data.heldOut(64);
      const held = heldExamples.length > 0 ? await encode(heldExamples) : null;
      using created = initModel
        ? undefined
        : DalleTransformer.create(
            { preset: 'tiny', layers: flags.layers, width: flags.width, heads: flags.width / 64, textLen: flags.textLength, textVocab: Math.max(512, tokenizer.vocabSize), grid: dvae.grid, imageVocab: dvae.config.vocabSize },
            { seed: flags.seed },
          );
      const model = initModel ?? created!;
      const prompts = heldExamples.slice(0, GRID).map((e) => e.caption);
      const sample = async (step: number, report: TrainingReport): Promise<void> => {
        if (prompts.length === 0) return;
        const out = await generateImages(model, dvae, tokenizer, prompts, { seed: 0, run });
        const per = size * size * 3;
        report.samples(step, sheet([heldExamples.slice(0, GRID).map((e) => e.image.data), prompts.map((_, i) => out.images.subarray(i * per, (i + 1) * per))], size), `held-out scenes (top) and one sample of each caption (bottom): ${prompts.join(' · ')}`);
      };
      const T = model.config.textLen;
      process.exitCode = await runTraining(
        flags,
        { title: `transformer training: ${flags.out}`, facts: { model: JSON.stringify(model.config), parameters: model.parameterCount, ...(flags.init ? { init: flags.init } : {}), data: `${data.describe}; ${train.captions.length} examples encoded`, tokenizer: `${tokenizer.vocabSize} ids`, steps: flags.steps, batch: flags.batch }, checkpointMetadata: { tokenizer: toHfJson(tokenizer) }, data },
        sample,
        (s) =>
          trainTransformer(model, {
            steps: flags.steps,
            data: (epoch) => s.between(textCodeBatches(train, tokenizer, epoch, { batchSize: flags.batch, textLen: T, seed: flags.seed })),
            lr: { from: flags.lr, to: flags.lr / 10, steps: flags.steps },
            lrWarmupSteps: flags.warmup,
            ...(held ? { eval: { every: Math.max(1, Math.round(flags.steps / 20)), data: () => textCodeBatches(held, tokenizer, 0, { batchSize: 32, textLen: T, shuffle: false, dropout: 0, dropLast: false }) } } : {}),
            ...s.trainer,
          }),
        async () => {
          await saveTransformer(model, flags.out, { tokenizer });
        },
      );
      controller.abort();
    });

  addTrainOptions(program.command('train-clip').description('train CLIP, which reranks the transformer’s samples'), { steps: 3000, batch: 32, lr: 1e-3, warmup: 150 })
    .option('--init <weights>', INIT_HELP)
    .option('--tokenizer <file>', 'a tokenizer (tokenizer.json); default: trained on the captions')
    .option('--vocab <n>', 'BPE vocabulary when training the tokenizer', intOption(257), 512)
    .option('--preset <name>', 'shapes32 (conv image encoder) or shapes32-vit', 'shapes32')
    .option('--size <px>', 'image side', intOption(8, 1024), 32)
    .option('--text-length <n>', 'text token slots (default: the preset’s, 16)', intOption(1, 1024))
    .action(async (flags: ClipFlags, cmd: Command) => {
      refuseArchitectureFlags(cmd, flags.init, ['preset', 'size', 'textLength', 'vocab']);
      trainingOutputs(flags);
      const fileTok = givenTokenizer(flags);
      const init = flags.init ? loadClip(flags.init) : null;
      using initModel = init?.model;
      const initTok = init ? initTokenizer(flags.init!, init.tokenizer, flags.tokenizer, init.model.config.textVocab) : null;
      const size = init?.model.config.imageSize ?? flags.size;
      const controller = new AbortController();
      const data = trainingData(flags, size, 'transformer', controller.signal);
      const tokenizer = initTok ?? fileTok ?? (await tokenizerFor(flags, () => captionsOf(data.batches(0))));
      // The text embedding grows to the tokenizer's ids; the preset's size stays the floor, so its recipes reproduce.
      const preset = clipPreset(flags.preset);
      using created = initModel
        ? undefined
        : Clip.create({ preset: flags.preset, imageSize: size, textVocab: Math.max(preset.textVocab, tokenizer.vocabSize), textLen: flags.textLength ?? preset.textLen }, { seed: flags.seed });
      const model = initModel ?? created!;
      const T = model.config.textLen;
      const held = await data.heldOut(64);
      const clipBatch = (examples: Example[], dropout: number, seed: number): ClipBatch => {
        const text = new Int32Array(examples.length * T);
        examples.forEach((e, i) => text.set(textSlots(tokenizer, e.caption, T, { dropout, seed: seed + i }), i * T));
        return { text, images: packBatch(examples, size).images };
      };
      const heldBatch = held.length > 0 ? clipBatch(held, 0, 0) : null;
      const sample = async (step: number, report: TrainingReport): Promise<void> => {
        if (heldBatch === null) return;
        // For the first captions, the held-out image CLIP ranks best among all of them.
        const cos = cosineMatrix(await model.encodeText(heldBatch.text, run), await model.encodeImages(heldBatch.images, run), model.config.embedDim);
        const n = held.length;
        const shown = held.slice(0, GRID);
        const picks = shown.map((_, i) => {
          let best = 0;
          for (let j = 1; j < n; j++) if (cos[i * n + j]! > cos[i * n + best]!) best = j;
          return best;
        });
        const right = picks.filter((p, i) => p === i).length;
        report.samples(step, sheet([shown.map((e) => e.image.data), picks.map((p) => held[p]!.image.data)], size), `captions' own images (top), the image CLIP picks for each caption among ${n} held-out (bottom): ${right}/${shown.length} right`);
      };
      process.exitCode = await runTraining(
        flags,
        { title: `CLIP training: ${flags.out}`, facts: { model: JSON.stringify(model.config), parameters: model.parameterCount, ...(flags.init ? { init: flags.init } : {}), data: data.describe, tokenizer: `${tokenizer.vocabSize} ids`, steps: flags.steps, batch: flags.batch }, checkpointMetadata: { tokenizer: toHfJson(tokenizer) }, data },
        sample,
        (s) =>
          trainClip(model, {
            steps: flags.steps,
            data: (epoch) =>
              s.between(
                (async function* () {
                  let at = 0; // BPE-dropout seeds: fresh per example and epoch, the same on a rerun
                  for await (const b of data.batches(epoch)) {
                    yield clipBatch(unpackBatch(b), 0.1, epoch * 1_000_003 + at);
                    at += b.captions.length;
                  }
                })(),
              ),
            lr: { from: flags.lr, to: flags.lr / 100, steps: flags.steps },
            lrWarmupSteps: flags.warmup,
            ...(heldBatch ? { eval: { every: Math.max(1, Math.round(flags.steps / 20)), data: async function* () { yield heldBatch; } } } : {}),
            ...s.trainer,
          }),
        async (result) => {
          if (result.ema) model.params.flat.write(result.ema);
          await saveClip(model, flags.out, { tokenizer });
        },
      );
      controller.abort();
    });
}
