import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import { PNG } from 'pngjs';

import { DalleError } from '../lib/errors.js';
import { installEmojiPackages, openSource, splitOf, toneName, type EmojiSpec } from '../lib/data/emoji/index.js';
import { openSourceSpec } from '../lib/data/source.js';
import type { Example } from '../lib/data/types.js';

// Ten emoji from emoji-datasource 16.0.0 (thumbs up with its five skin tones), both sets; google's rocket PNG is
// left out on purpose to exercise the missing-image skip.
const ROOT = fileURLToPath(new URL('./fixtures/emoji/', import.meta.url));
const IMAGES_PER_SET = 15;

async function collect(spec: Partial<EmojiSpec> = {}): Promise<{ examples: Example[]; source: ReturnType<typeof openSource> }> {
  const source = openSource({ kind: 'emoji', root: ROOT, ...spec });
  const examples: Example[] = [];
  for await (const ex of source) examples.push(ex);
  return { examples, source };
}

const byKey = (xs: Example[]): Map<string, Example> => new Map(xs.map((x) => [x.key, x]));
/** The emoji a key belongs to, without set or skin tone: "google/1f44d-1f3ff" → "1f44d". */
const emojiOf = (key: string): string => key.split('/')[1]!.replace(/-1f3f[b-f]/g, '');

test('every image of both sets is yielded once across the two splits, the missing one skipped', async (t) => {
  const train = await collect({ split: 'train', testFraction: 0.5 });
  const testSplit = await collect({ split: 'test', testFraction: 0.5 });
  const keys = [...train.examples, ...testSplit.examples].map((e) => e.key);
  t.is(new Set(keys).size, keys.length);
  t.is(keys.length, 2 * IMAGES_PER_SET - 1);
  t.is(keys.filter((k) => k.startsWith('twitter/')).length, IMAGES_PER_SET);
  t.true(train.examples.length > 0 && testSplit.examples.length > 0, 'a 0.5 split of ten emoji leaves both sides non-empty');
  for (const ex of [...train.examples, ...testSplit.examples]) {
    t.is(ex.image.width, 64);
    t.is(ex.image.height, 64);
    t.is(ex.image.data.length, 64 * 64 * 3);
  }
});

test('the missing google PNG is skipped and counted once however many passes', async (t) => {
  // The default 10 % test share puts all ten fixture emoji in train (checked by the split test below).
  const source = openSource({ kind: 'emoji', root: ROOT, split: 'train' });
  for (let pass = 0; pass < 2; pass++) for await (const _ of source);
  t.deepEqual(source.skipped, { skipped: 1, reasons: { 'missing image': 1 }, samples: [{ key: 'google/1f680', reason: 'missing image' }] });
});

test('captions are lower-case names; skin-tone variants name the tone; set and category appear in some', async (t) => {
  const seen = new Map<string, Set<string>>();
  for (let seed = 0; seed < 40; seed++) {
    for (const ex of (await collect({ seed, shuffle: false })).examples) {
      t.is(ex.caption, ex.caption.toLowerCase());
      if (!seen.has(ex.key)) seen.set(ex.key, new Set());
      seen.get(ex.key)!.add(ex.caption);
    }
  }
  const apple = [...seen.get('google/1f34e')!];
  t.true(apple.every((c) => c.includes('red apple')), apple.join(' | '));
  t.true(apple.includes('a google emoji of a red apple'), apple.join(' | '));
  t.true(apple.includes('red apple'));
  t.true(apple.some((c) => c.includes('food & drink')));
  t.false(apple.some((c) => c.includes('twitter')));

  const dark = [...seen.get('twitter/1f44d-1f3ff')!];
  t.true(dark.every((c) => c.includes('thumbs up sign: dark skin tone')), dark.join(' | '));
  const base = [...seen.get('twitter/1f44d')!];
  t.true(base.every((c) => c.includes('thumbs up sign') && !c.includes('skin tone')), base.join(' | '));
  t.true(seen.get('twitter/1f600')!.has('an emoji of a grinning face'));
});

test('toneName follows CLDR for one and two tones', (t) => {
  t.is(toneName('1F3FB'), 'light skin tone');
  t.is(toneName('1F3FC-1F3FF'), 'medium-light skin tone, dark skin tone');
  t.is(toneName('1F3FE-1F3FE'), 'medium-dark skin tone');
});

test('transparent pixels become white, opaque ones keep their colour', async (t) => {
  const { examples } = await collect({ shuffle: false });
  const ex = byKey(examples).get('twitter/1f600')!;
  const png = PNG.sync.read(readFileSync(join(ROOT, 'emoji-datasource-twitter/img/twitter/64/1f600.png')));
  let transparent = 0;
  let opaque = 0;
  let partial = 0;
  for (let p = 0; p < 64 * 64; p++) {
    const a = png.data[4 * p + 3]!;
    const rgb = [...ex.image.data.subarray(3 * p, 3 * p + 3)];
    const src = [...png.data.subarray(4 * p, 4 * p + 3)];
    if (a === 0) {
      transparent++;
      t.deepEqual(rgb, [255, 255, 255]);
    } else if (a === 255) {
      opaque++;
      t.deepEqual(rgb, src);
    } else {
      partial++;
      const want = src.map((c) => (c * a + 255 * (255 - a)) / 255);
      rgb.forEach((c, i) => t.true(Math.abs(c - want[i]!) <= 1));
    }
  }
  t.true(transparent > 100 && opaque > 100 && partial > 0, `${transparent} ${opaque} ${partial}`);
});

test('the split is fixed by the code point: seed-independent, whole emoji on one side', async (t) => {
  const splitKeys = async (split: 'train' | 'test', seed: number): Promise<string[]> =>
    (await collect({ split, seed, testFraction: 0.5 })).examples.map((e) => e.key).sort();
  const testA = await splitKeys('test', 1);
  t.deepEqual(await splitKeys('test', 2), testA);
  const trainEmoji = new Set((await splitKeys('train', 1)).map(emojiOf));
  const testEmoji = new Set(testA.map(emojiOf));
  t.false([...testEmoji].some((e) => trainEmoji.has(e)), 'no emoji on both sides');
  // Skin tones and sets follow their emoji: thumbs up is wholly on one side with all 12 images (6 per set).
  const thumbs = (testEmoji.has('1f44d') ? testA : await splitKeys('train', 1)).filter((k) => emojiOf(k) === '1f44d');
  t.is(thumbs.length, 12);
  t.is(splitOf('1F44D', 0.5), splitOf('1f44d', 0.5));
  // With the default 10 % nothing of the ten fixture emoji is held out (the skip test above relies on it).
  t.is((await collect({ split: 'test' })).examples.length, 0);
  // On many code points the test share is near the requested fraction.
  let held = 0;
  for (let cp = 0x1f300; cp < 0x1f300 + 2000; cp++) if (splitOf(cp.toString(16), 0.1) === 'test') held++;
  t.true(held > 150 && held < 250, `${held} of 2000`);
});

test('same seed, same stream; another seed or another pass, another order and phrasing', async (t) => {
  const a = (await collect({ seed: 7 })).examples;
  const b = (await collect({ seed: 7 })).examples;
  t.deepEqual(a.map((e) => [e.key, e.caption]), b.map((e) => [e.key, e.caption]));
  t.deepEqual(a[0]!.image.data, b[0]!.image.data);
  const c = (await collect({ seed: 8 })).examples;
  t.notDeepEqual(a.map((e) => [e.key, e.caption]), c.map((e) => [e.key, e.caption]));

  const source = openSource({ kind: 'emoji', root: ROOT, seed: 7 });
  const passes: string[][] = [];
  for (let pass = 0; pass < 2; pass++) {
    const keys: string[] = [];
    for await (const ex of source) keys.push(ex.key);
    passes.push(keys);
  }
  t.deepEqual(passes[0], a.map((e) => e.key));
  t.notDeepEqual(passes[1], passes[0]);
  t.deepEqual([...passes[1]!].sort(), [...passes[0]!].sort());
});

test('shards partition the stream and the loader can open the source by kind', async (t) => {
  const all = (await collect({ seed: 3 })).examples.map((e) => e.key);
  const shards = await Promise.all(
    [0, 1].map(async (index) => (await collect({ seed: 3, shard: { index, count: 2, block: 4 } })).examples.map((e) => e.key)),
  );
  t.deepEqual([...shards[0]!, ...shards[1]!].sort(), [...all].sort());
  t.true(shards[0]!.length > 0 && shards[1]!.length > 0);

  const source = await openSourceSpec({ kind: 'emoji', root: ROOT, seed: 3 });
  const keys: string[] = [];
  for await (const ex of source) keys.push(ex.key);
  t.deepEqual(keys, all);
});

test('a missing package or root is a clear E_NOT_FOUND; a bad spec is E_INVALID_ARGUMENT', (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'dalle-emoji-'));
  const noPkg = t.throws(() => openSource({ kind: 'emoji', root: empty }), { instanceOf: DalleError });
  t.is((noPkg as DalleError).code, 'E_NOT_FOUND');
  t.regex(noPkg!.message, /emoji-datasource-twitter is not installed/);
  t.regex(noPkg!.message, /dalle data emoji/);

  const noRoot = t.throws(() => openSource({ kind: 'emoji', root: join(empty, 'nope') }), { instanceOf: DalleError });
  t.is((noRoot as DalleError).code, 'E_NOT_FOUND');

  // Specs arrive as JSON from a worker or the CLI, so wrong types must be caught at run time too.
  const bad: Array<Record<string, unknown>> = [
    { sets: [] },
    { sets: ['apple'] },
    { split: 'validation' },
    { testFraction: 1 },
    { seed: 1.5 },
  ];
  for (const b of bad) {
    const err = t.throws(() => openSource({ kind: 'emoji', root: ROOT, ...b } as EmojiSpec), { instanceOf: DalleError });
    t.is((err as DalleError).code, 'E_INVALID_ARGUMENT', JSON.stringify(b));
  }
});

test('a nameless entry, a corrupt PNG and has_img false are skipped with their reasons', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'dalle-emoji-'));
  const img = join(root, 'emoji-datasource-twitter/img/twitter/64');
  mkdirSync(img, { recursive: true });
  copyFileSync(join(ROOT, 'emoji-datasource-twitter/img/twitter/64/1f34e.png'), join(img, '1f34e.png'));
  copyFileSync(join(ROOT, 'emoji-datasource-twitter/img/twitter/64/1f600.png'), join(img, '1f600.png'));
  writeFileSync(join(img, '1f355.png'), readFileSync(join(img, '1f34e.png')).subarray(0, 100));
  const entry = (unified: string, extra: object): object => ({ unified, image: `${unified.toLowerCase()}.png`, category: 'X', ...extra });
  writeFileSync(
    join(root, 'emoji-datasource-twitter/emoji.json'),
    JSON.stringify([
      entry('1F34E', { name: null, short_name: 'red_apple' }),
      entry('1F600', { name: null, short_name: null }),
      entry('1F355', { name: 'SLICE OF PIZZA' }),
      entry('1F680', { name: 'ROCKET', has_img_twitter: false }),
    ]),
  );
  const source = openSource({ kind: 'emoji', root, sets: ['twitter'], shuffle: false, testFraction: 0.01 });
  const got: Example[] = [];
  for await (const ex of source) got.push(ex);
  t.deepEqual(got.map((e) => e.key), ['twitter/1f34e']);
  t.true(got[0]!.caption.includes('red apple'), got[0]!.caption);
  t.deepEqual(source.skipped.reasons, { 'empty caption': 1, 'corrupt image': 1, 'missing image': 1 });
});

// A stand-in npm that records its arguments and lays out the packages as npm would, so the install step is
// tested without the network.
function fakeNpm(dir: string, body: string): string {
  const path = join(dir, 'npm');
  writeFileSync(path, `#!/bin/sh\necho "$@" > "${dir}/args"\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('installEmojiPackages runs npm install --no-save into the folder and checks the result', async (t) => {
  if (process.platform === 'win32') return t.pass('the fake npm is a shell script');
  const bin = mkdtempSync(join(tmpdir(), 'dalle-npm-'));
  const target = join(mkdtempSync(join(tmpdir(), 'dalle-emoji-')), 'data');
  const npm = fakeNpm(
    bin,
    `for p in emoji-datasource-twitter emoji-datasource-google; do mkdir -p "${target}/node_modules/$p" && echo '[]' > "${target}/node_modules/$p/emoji.json"; done`,
  );
  await installEmojiPackages(target, { npm });
  const args = readFileSync(join(bin, 'args'), 'utf8').trim().split(' ');
  t.deepEqual(args.slice(0, 1), ['install']);
  t.true(args.includes('--no-save'));
  t.is(args[args.indexOf('--prefix') + 1], target);
  t.deepEqual(args.slice(-2), ['emoji-datasource-twitter', 'emoji-datasource-google']);
  t.deepEqual(readdirSync(join(target, 'node_modules')).sort(), ['emoji-datasource-google', 'emoji-datasource-twitter']);

  const failing = fakeNpm(bin, 'echo "npm ERR! network unreachable" >&2; exit 1');
  const err = await t.throwsAsync(installEmojiPackages(join(target, 'other'), { npm: failing }), { instanceOf: DalleError });
  t.is((err as DalleError).code, 'E_INTERNAL');
  t.regex(err!.message, /network unreachable/);

  const missing = await t.throwsAsync(installEmojiPackages(target, { npm: join(bin, 'no-such-npm') }), { instanceOf: DalleError });
  t.is((missing as DalleError).code, 'E_NOT_FOUND');
});
