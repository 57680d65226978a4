/** `dalle generate "<prompt>"`: samples, CLIP reranking, and the best images as a PNG grid and/or separate files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { type Command, Option } from 'commander';

import { Dalle } from '../api/dalle.js';
import { defaultModelPath } from '../api/model-files.js';
import type { Backend } from '../api/types.js';
import { imageGrid } from '../data/grid.js';
import { encodePng } from '../data/image.js';
import { DalleAbortError, DalleError } from '../errors.js';
import { readFileBytes } from '../formats/files.js';
import { prepareOutputFile, prepareOutputFolder } from './files.js';
import { abortOnCtrlC, EXIT_INTERRUPTED } from './interrupt.js';
import { intOption, numberOption } from './options.js';
import { Progress } from './progress.js';

interface GenerateFlags {
  samples: number;
  keep: number;
  batch?: number;
  seed: number;
  temperature: number;
  topK: number;
  topP: number;
  complete?: string;
  rows?: number;
  out?: string;
  outDir?: string;
  scale: number;
  model: string;
  backend: Backend | 'auto';
  json?: boolean;
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('draw samples of a prompt, keep the ones CLIP ranks best, write them as PNG')
    .argument('<prompt>', 'what to draw, e.g. "a red circle"')
    .option('-n, --samples <n>', 'samples to draw', intOption(1, 4096), 16)
    .option('-k, --keep <n>', 'best samples to keep (CLIP reranking)', intOption(1, 4096), 4)
    .option('--batch <n>', 'samples drawn together (speed only; results do not depend on it)', intOption(1, 4096))
    .option('--seed <n>', 'random seed: the same seed and options give the same images', intOption(0, 2 ** 32 - 1), 0)
    .option('--temperature <t>', 'divides the logits; 0 always picks the most likely code', numberOption(0, 100), 1)
    .option('--top-k <k>', 'sample among the k most likely codes only (0: all)', intOption(0), 0)
    .option('--top-p <p>', 'sample among the most likely codes whose probability reaches p', numberOption(0, 1, true), 1)
    .option('--complete <image>', 'a PNG or JPEG whose top rows the samples continue')
    .option('--rows <n>', 'rows of codes kept from --complete (default: the paper’s 15 of 32, scaled)', intOption(0))
    .option('-o, --out <file>', 'write the kept images as one grid PNG (default dalle.png unless --out-dir)')
    .option('--out-dir <folder>', 'write each kept image as its own PNG: rank-sample.png')
    .option('--scale <k>', 'upscale the grid by an integer factor (nearest neighbour)', intOption(1, 64), 4)
    .option('--model <manifest>', 'model manifest (*.model.json)', defaultModelPath())
    .addOption(new Option('--backend <name>', 'where the model runs').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--json', 'print what was written, with CLIP scores, as JSON on stdout')
    .action(async (prompt: string, flags: GenerateFlags) => {
      process.exitCode = await generate(prompt, flags);
    });
}

async function generate(prompt: string, flags: GenerateFlags): Promise<number> {
  if (flags.keep > flags.samples) throw new DalleError('E_INVALID_ARGUMENT', `--keep ${flags.keep} is more than the ${flags.samples} samples drawn (-n)`);
  if (flags.rows !== undefined && flags.complete === undefined) throw new DalleError('E_INVALID_ARGUMENT', '--rows needs --complete <image>');
  const image = flags.complete === undefined ? undefined : readInput(flags.complete);
  const gridPath = flags.out ?? (flags.outDir === undefined ? 'dalle.png' : undefined);
  // Before the model loads and samples: a path that cannot be written fails now, not after the work.
  if (gridPath !== undefined) prepareOutputFile(gridPath, flags.out === undefined ? 'the grid' : '-o');
  if (flags.outDir !== undefined) prepareOutputFolder(flags.outDir, '--out-dir');
  const controller = new AbortController();
  const stopListening = abortOnCtrlC(controller, 'stopping after this token… (Ctrl-C again to quit at once)');
  let progress: Progress | null = null;
  try {
    await using dalle = await Dalle.load(flags.model, { backend: flags.backend });
    progress = new Progress(`sampling (${dalle.backend})`, flags.samples * dalle.info.grid ** 2, 'tokens');
    const result = await dalle.generate(prompt, {
      n: flags.samples,
      keep: flags.keep,
      batch: flags.batch,
      seed: flags.seed,
      temperature: flags.temperature,
      topK: flags.topK,
      topP: flags.topP,
      image,
      rows: flags.rows,
      signal: controller.signal,
      onProgress: (p) => progress!.update(p.tokens),
    });
    progress.stop();
    const written: Array<{ file: string; sample?: number; score?: number | null }> = [];
    if (gridPath !== undefined) {
      const grid = imageGrid(result.images.map((im) => im.pixels), result.size, { scale: flags.scale, gap: flags.scale });
      writeOutput(gridPath, encodePng(grid));
      written.push({ file: resolve(gridPath) });
    }
    if (flags.outDir !== undefined) {
      result.images.forEach((im, rank) => {
        const file = join(flags.outDir!, `${rank + 1}-${im.index}.png`);
        writeOutput(file, im.png);
        written.push({ file: resolve(file), sample: im.index, score: im.score });
      });
    }
    if (result.truncated) process.stderr.write(`note: the prompt is longer than the model's ${dalle.info.textLength} text tokens; its end was dropped\n`);
    if (flags.json) {
      const images = result.images.map((im) => ({ sample: im.index, score: im.score }));
      process.stdout.write(JSON.stringify({ prompt, model: dalle.info.name, backend: result.backend, size: result.size, seconds: result.seconds, truncated: result.truncated, images, written }, null, 2) + '\n');
    } else {
      const best = result.images[0]!.score;
      const ranked = best === null ? 'not reranked (the model has no CLIP)' : `best CLIP score ${best.toFixed(3)}`;
      process.stdout.write(`${written.map((w) => w.file).join(', ')}: ${result.images.length} of ${flags.samples} samples, ${ranked}; ${result.seconds.toFixed(1)} s on ${result.backend}\n`);
    }
    return 0;
  } catch (err) {
    progress?.stop();
    if (err instanceof DalleAbortError) {
      process.stderr.write('dalle: stopped; nothing was written\n');
      return EXIT_INTERRUPTED;
    }
    throw err;
  } finally {
    stopListening();
  }
}

function readInput(path: string): Uint8Array {
  return readFileBytes(path);
}

function writeOutput(path: string, bytes: Uint8Array): void {
  try {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    writeFileSync(path, bytes);
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `cannot write ${path}: ${(err as Error).message}`);
  }
}
