/**
 * `dalle data emoji` (download the emoji packages, report what the dataset holds) and `dalle data shapes` (write
 * shapes-world scenes as a folder dataset: N.png + N.txt, readable by the folder source).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { Command } from 'commander';

import { encodePng } from '../data/image.js';
import { defaultEmojiRoot, EMOJI_SETS, installEmojiPackages, readCatalog } from '../data/emoji/index.js';
import { CAPABILITIES, type Capability, shapesExamples } from '../data/shapes/index.js';
import { prepareOutputFolder } from './files.js';
import { intOption, listOf } from './options.js';
import { Progress } from './progress.js';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('get or make training data');

  data
    .command('emoji')
    .description('download the Twemoji and Noto Emoji packages (about 100 MB) for the emoji dataset')
    .option('--dir <folder>', 'where to install them', defaultEmojiRoot())
    .option('--npm <path>', 'the npm executable', 'npm')
    .option('--quiet', "do not show npm's output")
    .action(async (opts: { dir: string; npm: string; quiet?: boolean }) => {
      const dir = resolve(opts.dir);
      process.stderr.write(`installing emoji-datasource-twitter and emoji-datasource-google into ${dir}\n`);
      await installEmojiPackages(dir, { npm: opts.npm, ...(opts.quiet ? {} : { onOutput: (s) => process.stderr.write(s) }) });
      for (const set of EMOJI_SETS) {
        const entries = readCatalog(dir, set, 0.1);
        const present = entries.filter((e) => e.hasImage && existsSync(e.file));
        const train = present.filter((e) => e.split === 'train').length;
        const missing = entries.length - present.length;
        const note = missing > 0 ? `; ${missing} listed without an image, skipped` : '';
        process.stdout.write(`${set}: ${present.length} images (${train} train, ${present.length - train} test${note})\n`);
      }
      process.stdout.write(`ready: { kind: 'emoji'${dir === resolve(defaultEmojiRoot()) ? '' : `, root: ${JSON.stringify(dir)}`} }\n`);
    });

  data
    .command('shapes')
    .description('render shapes-world scenes into a folder: N.png with its caption in N.txt')
    .requiredOption('--out <folder>', 'output folder (created if missing)')
    .option('--count <n>', 'how many scenes', intOption(1), 1000)
    .option('--size <px>', 'canvas side: 32, 64 or 128', intOption(1), 64)
    .option('--split <split>', "'train' or 'test' (held-out colour–shape pairs appear only in test)", 'train')
    .option('--seed <n>', 'dataset seed', intOption(0), 0)
    .option('--capabilities <list>', `comma-separated subset of ${CAPABILITIES.join(',')}`, listOf(CAPABILITIES))
    .action((opts: { out: string; count: number; size: number; split: string; seed: number; capabilities?: Capability[] }) => {
      const out = resolve(opts.out);
      // Validation (size, split) happens in the source, before the folder is created.
      const examples = shapesExamples({
        kind: 'shapes',
        size: opts.size,
        count: opts.count,
        split: opts.split as 'train' | 'test',
        seed: opts.seed,
        ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
      });
      const first = examples.next();
      prepareOutputFolder(out, '-o');
      const digits = String(opts.count - 1).length;
      const progress = new Progress('rendering', opts.count, 'scenes');
      let n = 0;
      for (let it = first; !it.done; it = examples.next()) {
        const name = String(n).padStart(digits, '0');
        writeFileSync(join(out, `${name}.png`), encodePng(it.value.image));
        writeFileSync(join(out, `${name}.txt`), it.value.caption + '\n');
        progress.update(++n);
      }
      progress.stop();
      process.stdout.write(`wrote ${n} ${opts.size}x${opts.size} ${opts.split} scenes to ${out}\n`);
    });
}
