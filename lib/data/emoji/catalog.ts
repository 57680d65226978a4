/**
 * Reads the emoji-datasource-<set> packages (iamcal/emoji-data) into a flat list of images to load: one per
 * emoji and per skin-tone variation, with the name and the split already decided.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { DalleError } from '../../errors.js';
import type { Split } from '../types.js';

export type EmojiSet = 'twitter' | 'google';
export const EMOJI_SETS: readonly EmojiSet[] = ['twitter', 'google'];

/** One image of one set, ready to load and caption. */
export interface EmojiEntry {
  set: EmojiSet;
  /** Code points of this image (with the skin-tone modifier for a variation), e.g. "1F44D-1F3FF". */
  unified: string;
  /** Lower-case name, with the skin tone for a variation: "thumbs up sign: dark skin tone". */
  name: string;
  /** Lower-case category: "people & body". */
  category: string;
  /** Absolute path of the 64 px PNG. */
  file: string;
  /** False where the package says it has no image for this set; the file is then not even tried. */
  hasImage: boolean;
  split: Split;
}

interface RawImage {
  unified: string;
  image: string;
  has_img_twitter?: boolean;
  has_img_google?: boolean;
}

interface RawEmoji extends RawImage {
  name?: string | null;
  short_name?: string | null;
  category?: string | null;
  obsoleted_by?: string | null;
  skin_variations?: Record<string, RawImage>;
}

const PACKAGE_PREFIX = 'emoji-datasource-';

/** CLDR names of the Fitzpatrick modifiers, so variation captions read like Unicode's own "thumbs up: dark skin tone". */
const TONES: Record<string, string> = {
  '1F3FB': 'light skin tone',
  '1F3FC': 'medium-light skin tone',
  '1F3FD': 'medium skin tone',
  '1F3FE': 'medium-dark skin tone',
  '1F3FF': 'dark skin tone',
};

/** "1F3FB" → "light skin tone"; two-person keys name both tones, or one when they are the same (as CLDR does). */
export function toneName(key: string): string {
  const parts = [...new Set(key.toUpperCase().split('-'))];
  return parts.map((p) => TONES[p] ?? p.toLowerCase()).join(', ');
}

/**
 * The split of an emoji group by a hash of its code points, independent of the seed: test emoji stay the same
 * whatever the run, and every set and skin tone of an emoji lands on the same side, so none is seen in training.
 */
export function splitOf(group: string, testFraction: number): Split {
  let h = 0x811c9dc5;
  const s = group.toUpperCase();
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  // FNV-1a's low bits mix poorly for short keys; a final avalanche spreads them before the threshold.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296 < testFraction ? 'test' : 'train';
}

/**
 * The package folder for a set: `root` may be the folder holding node_modules/ (where `dalle data emoji`
 * installs) or a folder holding the packages directly (the test fixture, since node_modules/ is git-ignored).
 */
export function packageDir(root: string, set: EmojiSet): string {
  const abs = resolve(root);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new DalleError('E_NOT_FOUND', `emoji root ${abs} does not exist or is not a folder`);
  }
  const name = PACKAGE_PREFIX + set;
  for (const dir of [join(abs, 'node_modules', name), join(abs, name)]) {
    if (existsSync(join(dir, 'emoji.json'))) return dir;
  }
  throw new DalleError(
    'E_NOT_FOUND',
    `${name} is not installed under ${abs}: run \`dalle data emoji\` (or installEmojiPackages(${JSON.stringify(abs)})) ` +
      'to download the emoji packages first',
  );
}

/** Every image of one set, base emoji and skin-tone variations, in the package's order. */
export function readCatalog(root: string, set: EmojiSet, testFraction: number): EmojiEntry[] {
  const dir = packageDir(root, set);
  const jsonPath = join(dir, 'emoji.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `${jsonPath}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!Array.isArray(raw)) throw new DalleError('E_INVALID_ARGUMENT', `${jsonPath}: expected an array of emoji`);

  const hasKey = set === 'twitter' ? 'has_img_twitter' : 'has_img_google';
  const imgDir = join(dir, 'img', set, '64');
  const out: EmojiEntry[] = [];
  for (const e of raw as RawEmoji[]) {
    if (typeof e?.unified !== 'string' || typeof e.image !== 'string') continue;
    const name = baseName(e);
    const category = (e.category ?? '').toLowerCase();
    // An obsoleted emoji (RUNNER) shares its image with its replacement (MAN RUNNING): group them so the
    // same picture cannot sit on both sides of the split.
    const split = splitOf(e.obsoleted_by ?? e.unified, testFraction);
    const entry = (img: RawImage, entryName: string): EmojiEntry => ({
      set,
      unified: img.unified,
      name: entryName,
      category,
      file: join(imgDir, img.image),
      hasImage: img[hasKey] !== false,
      split,
    });
    out.push(entry(e, name));
    for (const [tone, v] of Object.entries(e.skin_variations ?? {})) {
      if (typeof v?.unified === 'string' && typeof v.image === 'string') {
        out.push(entry(v, name === '' ? '' : `${name}: ${toneName(tone)}`));
      }
    }
  }
  return out;
}

/** The Unicode name, lower-cased; the short name where a (future) entry lacks one; '' when neither exists. */
function baseName(e: RawEmoji): string {
  const name = e.name ?? e.short_name?.replace(/_/g, ' ') ?? '';
  return name.trim().toLowerCase();
}
