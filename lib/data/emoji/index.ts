/**
 * The emoji dataset: Twemoji and Noto Emoji images from the emoji-datasource-twitter / -google npm packages
 * (installed on demand by installEmojiPackages, never a dependency), composited on white, with captions made
 * from the Unicode names.
 */
import { readFile } from 'node:fs/promises';

import { DalleError } from '../../errors.js';
import { decodeImage } from '../image.js';
import { exampleSeed, mulberry32 } from '../preprocess.js';
import { inShard, SkipCounter, type ExampleSource, type ShardSpec } from '../source.js';
import type { Example, SkipReport, Split } from '../types.js';
import { caption } from './captions.js';
import { EMOJI_SETS, readCatalog, type EmojiEntry, type EmojiSet } from './catalog.js';

export { defaultEmojiRoot, installEmojiPackages, EMOJI_PACKAGES, type InstallOptions } from './install.js';
import { defaultEmojiRoot } from './install.js';
export { EMOJI_SETS, readCatalog, splitOf, toneName, type EmojiEntry, type EmojiSet } from './catalog.js';

export interface EmojiSpec {
  kind: 'emoji';
  /** Folder holding node_modules/emoji-datasource-* (or the packages themselves); default defaultEmojiRoot(). */
  root?: string;
  /** Default both. */
  sets?: EmojiSet[];
  /** Default 'train'. */
  split?: Split;
  /** Picks the phrasings and the order; default 0. */
  seed?: number;
  /** Share of emoji (not images) held out for 'test'; default 0.1. */
  testFraction?: number;
  /** Visit the images in a new seeded order on every pass (default true): the package order groups by category. */
  shuffle?: boolean;
  shard?: ShardSpec;
}

export function openSource(spec: EmojiSpec): ExampleSource {
  const { root, sets, split, seed, testFraction, shuffle } = checkSpec(spec);
  const entries = sets.flatMap((set) => readCatalog(root, set, testFraction)).filter((e) => e.split === split);
  const skips = new SkipCounter();
  // A skip is counted once per image, not once per pass, so the report says how much of the dataset is unusable.
  const counted = new Set<string>();
  const skip = (key: string, reason: string): void => {
    if (counted.has(key)) return;
    counted.add(key);
    skips.add(key, reason);
  };
  let passes = 0;

  async function* iterate(epoch: number): AsyncGenerator<Example> {
    const order = shuffle ? shuffled(entries, mulberry32(exampleSeed(seed, 'emoji-order', epoch))) : entries;
    for (let i = 0; i < order.length; i++) {
      if (!inShard(spec.shard, i)) continue;
      const e = order[i]!;
      const key = `${e.set}/${e.unified.toLowerCase()}`;
      if (e.name === '') {
        skip(key, 'empty caption');
        continue;
      }
      const image = await load(e, key, skip);
      if (image === null) continue;
      const text = caption({ name: e.name, set: e.set, category: e.category }, mulberry32(exampleSeed(seed, key, epoch)));
      yield { key, image, caption: text };
    }
  }

  return {
    get skipped(): SkipReport {
      return skips.report;
    },
    sharded: true,
    [Symbol.asyncIterator]: () => iterate(passes++)[Symbol.asyncIterator](),
  };
}

async function load(e: EmojiEntry, key: string, skip: (key: string, reason: string) => void): Promise<Example['image'] | null> {
  if (!e.hasImage) return skip(key, 'missing image'), null;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(e.file);
  } catch {
    return skip(key, 'missing image'), null;
  }
  try {
    return decodeImage(bytes, key);
  } catch {
    return skip(key, 'corrupt image'), null;
  }
}

function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface CheckedSpec {
  root: string;
  sets: EmojiSet[];
  split: Split;
  seed: number;
  testFraction: number;
  shuffle: boolean;
}

function checkSpec(spec: EmojiSpec): CheckedSpec {
  const bad = (msg: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `emoji source: ${msg}`);
  };
  if (spec === null || typeof spec !== 'object') bad('spec must be an object');
  const root = spec.root ?? defaultEmojiRoot();
  if (typeof root !== 'string' || root === '') bad('root must be a folder path');
  const sets = spec.sets ?? [...EMOJI_SETS];
  if (!Array.isArray(sets) || sets.length === 0 || !sets.every((s) => EMOJI_SETS.includes(s))) {
    bad(`sets must be a non-empty list of ${EMOJI_SETS.join(', ')}; got ${JSON.stringify(spec.sets)}`);
  }
  const split = spec.split ?? 'train';
  if (split !== 'train' && split !== 'test') bad(`split must be 'train' or 'test'; got ${JSON.stringify(split)}`);
  const seed = spec.seed ?? 0;
  if (!Number.isInteger(seed)) bad(`seed must be an integer; got ${seed}`);
  const testFraction = spec.testFraction ?? 0.1;
  if (!(testFraction > 0 && testFraction < 1)) bad(`testFraction must be in (0, 1); got ${testFraction}`);
  return { root, sets: [...new Set(sets)], split, seed, testFraction, shuffle: spec.shuffle ?? true };
}
