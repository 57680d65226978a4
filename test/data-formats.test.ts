import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import test from 'ava';

import { DalleError } from '../lib/errors.js';
import { openSource as openFolder } from '../lib/data/folder/index.js';
import { IMAGE_LIMITS, declaredSize, decodeImage, decodeImageWith, encodePng, sniffFormat } from '../lib/data/image.js';
import { openSource as openJsonl } from '../lib/data/jsonl/index.js';
import { areaResize, mulberry32, preprocess } from '../lib/data/preprocess.js';
import { type ExampleSource, mergeSkipReports, openSourceSpec } from '../lib/data/source.js';
import type { Example, ImageRGB } from '../lib/data/types.js';
import { openSource as openWebDataset } from '../lib/data/webdataset/index.js';
import { jpegBytes, jpegDeclaring, mixedFolder, pattern, pngBytes, pngChunk, pngDeclaring, rawPng, tarBytes, tempDir, write } from './helpers/data-fixtures.js';

async function collect(source: ExampleSource): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of source) out.push(ex);
  return out;
}

const px = (img: ImageRGB, x: number, y: number): number[] => {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
};

// --- decoding ---

test('PNG decodes to the exact RGB written, and alpha is composited on white', (t) => {
  const img = decodeImage(pngBytes(5, 4, pattern(7)), 'a.png');
  t.is(img.width, 5);
  t.is(img.height, 4);
  t.is(img.data.length, 5 * 4 * 3);
  t.deepEqual(px(img, 3, 2), pattern(7)(3, 2).slice(0, 3));
  const rgba = decodeImage(pngBytes(3, 1, (x) => [0, 100, 200, [0, 128, 255][x]!], 6), 'rgba.png');
  t.deepEqual(px(rgba, 0, 0), [255, 255, 255]);
  // 128/255 of the colour plus 127/255 of white, rounded.
  t.deepEqual(px(rgba, 1, 0), [127, 177, 227]);
  t.deepEqual(px(rgba, 2, 0), [0, 100, 200]);
});

test('grey PNG comes out as RGB with equal channels', (t) => {
  const img = decodeImage(pngBytes(4, 2, (x, y) => [x * 60 + y, x * 60 + y, x * 60 + y, 255], 0), 'g.png');
  t.deepEqual(px(img, 3, 1), [181, 181, 181]);
});

test('palette PNG (with transparency) and 16-bit PNG decode to 8-bit RGB', (t) => {
  // 2-bit indices: red, green, a half-transparent blue, fully transparent black.
  const plte = { type: 'PLTE', data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]) };
  const trns = { type: 'tRNS', data: Uint8Array.from([255, 255, 128, 0]) };
  const indexed = decodeImage(rawPng(4, 1, 3, 2, [Uint8Array.from([0b00011011])], [plte, trns]), 'p.png');
  t.deepEqual([0, 1, 2, 3].map((x) => px(indexed, x, 0)), [[255, 0, 0], [0, 255, 0], [127, 127, 255], [255, 255, 255]]);

  // 16-bit RGB scales by 255/65535: 0x80ff → 128.498 → 128, 0xffff → 255.
  const deep = decodeImage(rawPng(2, 1, 2, 16, [Uint8Array.from([0xff, 0xff, 0, 0, 0x80, 0xff, 0, 0, 0xff, 0xff, 0, 0])]), 'd.png');
  t.deepEqual(px(deep, 0, 0), [255, 0, 128]);
  t.deepEqual(px(deep, 1, 0), [0, 255, 0]);
});

test('encodePng round-trips exactly and refuses a buffer of the wrong size', (t) => {
  const img = decodeImage(pngBytes(7, 3, pattern(9)), 'x.png');
  t.deepEqual(decodeImage(encodePng(img), 'y.png'), img);
  const err = t.throws(() => encodePng({ width: 7, height: 3, data: new Uint8Array(10) }), { instanceOf: DalleError });
  t.is((err as DalleError).code, 'E_INVALID_ARGUMENT');
});

test('greyscale JPEG comes out as RGB with equal channels', async (t) => {
  let sharp: typeof import('sharp').default;
  try {
    sharp = (await import('sharp')).default;
  } catch {
    return t.pass('sharp (a dev dependency) is needed to write a greyscale JPEG; not installed');
  }
  const grey = Buffer.alloc(16 * 8);
  for (let i = 0; i < grey.length; i++) grey[i] = (i % 16) * 16;
  const bytes = await sharp(grey, { raw: { width: 16, height: 8, channels: 1 } }).jpeg({ quality: 100 }).toBuffer();
  const img = decodeImage(bytes, 'g.jpg');
  t.is(img.data.length, 16 * 8 * 3);
  for (let p = 0; p < 16 * 8; p++) {
    const [r, g, b] = [img.data[p * 3]!, img.data[p * 3 + 1]!, img.data[p * 3 + 2]!];
    t.true(r === g && g === b, `pixel ${p}: ${r},${g},${b}`);
    t.true(Math.abs(r - grey[p]!) <= 8, `pixel ${p}: ${r} vs ${grey[p]}`);
  }
});

test('JPEG decodes close to its source', (t) => {
  const img = decodeImage(jpegBytes(32, 24, pattern(3), 100), 'a.jpg');
  t.is(img.width, 32);
  t.is(img.height, 24);
  let worst = 0;
  for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) {
    const want = pattern(3)(x, y);
    px(img, x, y).forEach((v, c) => (worst = Math.max(worst, Math.abs(v - want[c]!))));
  }
  t.true(worst <= 12, `max error ${worst}`);
});

test('format comes from magic bytes, not the extension', (t) => {
  const png = pngBytes(2, 2, pattern(1));
  t.is(sniffFormat(png), 'png');
  t.is(sniffFormat(jpegBytes(8, 8, pattern(1))), 'jpeg');
  t.is(decodeImage(png, 'misnamed.jpg').width, 2);
  t.is(sniffFormat(Buffer.from('hello world')), null);
});

test('corrupt or non-image bytes throw DalleError E_INVALID_ARGUMENT', (t) => {
  const png = pngBytes(16, 16, pattern(1));
  for (const bytes of [png.subarray(0, png.length - 30), png.subarray(0, 20), Buffer.from('not an image'), jpegBytes(16, 16, pattern(1)).subarray(0, 30)]) {
    const err = t.throws(() => decodeImage(bytes, 'x'));
    t.true(err instanceof DalleError);
    t.is((err as DalleError).code, 'E_INVALID_ARGUMENT');
  }
});

test('declaredSize reads the size from the header without decoding', (t) => {
  t.deepEqual(declaredSize(pngBytes(5, 4, pattern(7)), 'png'), { width: 5, height: 4 });
  t.deepEqual(declaredSize(jpegBytes(32, 24, pattern(3), 90), 'jpeg'), { width: 32, height: 24 });
  t.deepEqual(declaredSize(pngDeclaring(12000, 12000), 'png'), { width: 12000, height: 12000 });
  t.is(declaredSize(Buffer.from([0xff, 0xd8, 0xff, 0xd9]), 'jpeg'), null);
});

// Each of these once took the process down (zlib's assertion through pngjs: SIGABRT) or took seconds and gigabytes
// before the size was refused after decoding. Now the header is read first.
test('an image whose header declares a huge size is refused before decoding, at once', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['2147483647x2147483647 PNG', pngDeclaring(0x7fffffff, 0x7fffffff), /declares 2147483647x2147483647/],
    ['12000x12000 PNG', pngDeclaring(12000, 12000), /declares 12000x12000/],
    ['a PNG with a zero side', pngDeclaring(0, 5), /declares 0x5/],
    ['9000x9000 JPEG', jpegDeclaring(9000, 9000), /declares 9000x9000/],
    ['40000x10 JPEG (side over the limit)', jpegDeclaring(40000, 10), new RegExp(`sides 1-${IMAGE_LIMITS.maxSide}`)],
    // Within the limits, but more than the bytes can hold (pngjs pads missing data; jpeg-js allocates the frame).
    ['8192x8192 PNG of 68 bytes', pngDeclaring(8192, 8192), /declares 8192x8192 \(201334784 bytes of pixel data\), but its \d+ bytes of image data inflate to at most/],
    ['8192x8192 JPEG of 1 KB', jpegDeclaring(8192, 8192), /declares 8192x8192, more than its \d+ bytes can hold/],
    // pngjs took the last IHDR: a 2x2 one first let 2^31 x 2^31 reach zlib (SIGABRT).
    ['a second IHDR', secondIhdr(pngDeclaring(0x7fffffff, 0x7fffffff)), /more than one IHDR/],
    // jpeg-js reads a DRI as 4 bytes whatever its length says: a length that hid the frame from the header walk.
    ['a DRI whose length hides the frame', driHidingFrame(jpegDeclaring(9000, 9000)), /no frame header before the scan data/],
  ];
  for (const [what, bytes, message] of cases) {
    const start = performance.now();
    const err = t.throws(() => decodeImage(bytes, what), { instanceOf: DalleError }, what);
    t.is(err?.code, 'E_INVALID_ARGUMENT', what);
    t.regex(err?.message ?? '', message, what);
    t.true(performance.now() - start < 100, `${what}: refused in ${(performance.now() - start).toFixed(0)} ms`);
    await t.throwsAsync(decodeImageWith(bytes, what, 'sharp'), { code: 'E_INVALID_ARGUMENT' } as never, `${what} (sharp)`);
  }
});

/** `png` with a 2x2 IHDR inserted before its own, so its IHDR comes second. */
function secondIhdr(png: Buffer): Buffer {
  const small = pngBytes(2, 2, pattern(1));
  return Buffer.concat([png.subarray(0, 8), small.subarray(8, 33), png.subarray(8)]);
}

/** `jpg` with a DRI segment after SOI whose length field (6) covers the 2 bytes that follow it. */
function driHidingFrame(jpg: Buffer): Buffer {
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  return Buffer.concat([jpg.subarray(0, sof), Buffer.from([0xff, 0xdd, 0x00, 0x06, 0x00, 0x00]), jpg.subarray(sof)]);
}

test('interlaced PNG data that inflates past its header is refused before pngjs inflates it unbounded', (t) => {
  // 16x16 RGB interlaced: 798 bytes of filtered scanlines over its 7 passes; the IDAT holds 64 MB of zeros in 64 KB.
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16, 0);
  ihdr.writeUInt32BE(16, 4);
  ihdr.set([8, 2, 0, 0, 1], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const withData = (idat: Buffer) => Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
  const png = withData(deflateSync(Buffer.alloc(64 << 20), { level: 9 }));
  const start = performance.now();
  const err = t.throws(() => decodeImage(png, 'bomb.png'), { instanceOf: DalleError });
  t.regex(err?.message ?? '', /inflates past the 798 bytes its png header declares/);
  t.true(performance.now() - start < 1000, `${(performance.now() - start).toFixed(0)} ms`);
  // An honest interlaced file still decodes.
  const honest = withData(deflateSync(Buffer.alloc(798)));
  t.deepEqual([decodeImage(honest, 'ok.png').width, decodeImage(honest, 'ok.png').height], [16, 16]);
});

test('the opt-in sharp decoder agrees with the JS one: exact for PNG, close for JPEG, same errors', async (t) => {
  const rgba = pngBytes(6, 5, (x, y) => [x * 40, y * 50, 90, x === 0 ? 0 : 255], 6);
  t.deepEqual(await decodeImageWith(rgba, 'a.png', 'sharp'), decodeImage(rgba, 'a.png'));
  const jpg = jpegBytes(32, 24, pattern(3), 90);
  const [a, b] = [await decodeImageWith(jpg, 'a.jpg', 'sharp'), decodeImage(jpg, 'a.jpg')];
  t.is(a.width, 32);
  t.is(a.height, 24);
  t.true(a.data.every((v, i) => Math.abs(v - b.data[i]!) <= 4));
  const png = pngBytes(16, 16, pattern(1));
  await t.throwsAsync(decodeImageWith(png.subarray(0, png.length - 30), 'x', 'sharp'), { code: 'E_INVALID_ARGUMENT' } as never);
  await t.throwsAsync(decodeImageWith(Buffer.from('text'), 'x', 'sharp'), { code: 'E_INVALID_ARGUMENT' } as never);
});

// --- preprocessing ---

const gradient = (w: number, h: number, f: (x: number, y: number) => number): ImageRGB => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(f(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return { width: w, height: h, data };
};

test('area resize is an exact box average for integer factors', (t) => {
  const img = gradient(4, 2, (x, y) => x * 10 + y * 100 + (x % 2));
  const out = areaResize(img, 2, 1);
  // Cell (0,0) averages 0,11,100,111 → 55.5 → 56; cell (1,0) averages 20,31,120,131 → 75.5 → 76.
  t.deepEqual([...out.data], [56, 56, 56, 76, 76, 76]);
  const big = gradient(12, 9, (x, y) => (x * 7 + y * 13) % 256);
  const third = areaResize(big, 4, 3);
  let sum = 0;
  for (let y = 3; y < 6; y++) for (let x = 6; x < 9; x++) sum += (x * 7 + y * 13) % 256;
  t.is(third.data[(1 * 4 + 2) * 3], Math.floor(sum / 9 + 0.5));
});

test('area resize preserves a flat colour at fractional factors', (t) => {
  const out = areaResize(gradient(37, 23, () => 200), 10, 7);
  t.true(out.data.every((v) => v === 200));
});

test('transformer crop stays within [3/8, 5/8] of the slack, never flips, and is seeded', (t) => {
  // Tall image whose value is its row: the output's first row is the crop offset (s = S, so no resize).
  const img = gradient(64, 256, (_x, y) => y);
  const offsets = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const out = preprocess(img, 'transformer', 64, mulberry32(seed));
    t.is(out.width, 64);
    offsets.add(out.data[0]!);
  }
  t.true(Math.min(...offsets) >= 72 && Math.max(...offsets) <= 120, `offsets ${Math.min(...offsets)}..${Math.max(...offsets)}`);
  t.true(offsets.size > 20);
  const wide = gradient(200, 100, (x) => x);
  for (let seed = 0; seed < 50; seed++) {
    const out = preprocess(wide, 'transformer', 64, mulberry32(seed));
    t.true(out.data[0]! < out.data[63 * 3]!, 'left-to-right order kept: no flip');
  }
  t.deepEqual(preprocess(wide, 'transformer', 64, mulberry32(9)), preprocess(wide, 'transformer', 64, mulberry32(9)));
});

test('transformer resize range is [S, min(s, S·288/256)]', (t) => {
  // Columns hold x, so the horizontal scale t/s shows in the value step across the output.
  const img = gradient(250, 250, (x) => x);
  const ts = new Set<number>();
  for (let seed = 0; seed < 300; seed++) {
    const out = preprocess(img, 'transformer', 64, mulberry32(seed));
    ts.add(Math.round((63 * 250) / (out.data[63 * 3]! - out.data[0]!)));
  }
  t.true(Math.min(...ts) >= 63 && Math.max(...ts) <= 73, `t range ${Math.min(...ts)}..${Math.max(...ts)}`);
});

test('dvae preset flips about half the time and crops anywhere in the slack', (t) => {
  const square = gradient(32, 32, (x) => x * 8);
  let flipped = 0;
  for (let seed = 0; seed < 200; seed++) {
    const out = preprocess(square, 'dvae', 32, mulberry32(seed));
    if (out.data[0]! > out.data[31 * 3]!) flipped++;
    else t.deepEqual(out.data, square.data);
  }
  t.true(flipped > 70 && flipped < 130, `${flipped} flips of 200`);
  const tall = gradient(32, 200, (_x, y) => y);
  const offsets = new Set<number>();
  for (let seed = 0; seed < 300; seed++) offsets.add(preprocess(tall, 'dvae', 32, mulberry32(seed)).data[0]!);
  t.true(Math.min(...offsets) <= 10 && Math.max(...offsets) >= 158, 'offsets span the whole slack');
});

test('small images are upsampled to the target size', (t) => {
  const out = preprocess(gradient(20, 30, () => 90), 'transformer', 64, mulberry32(1));
  t.is(out.width, 64);
  t.is(out.height, 64);
  t.true(out.data.every((v) => v === 90));
});

// --- sources ---

test('folder source pairs images with captions and counts every bad input', async (t) => {
  const source = openFolder({ kind: 'folder', path: mixedFolder() });
  const examples = await collect(source);
  t.deepEqual(examples.map((e) => e.key), ['a.png', 'b.jpg', 'sub/f.png']);
  t.deepEqual(examples.map((e) => e.caption), ['a red square', 'a blue circle', 'a green triangle']);
  t.is(examples[1]!.image.width, 30);
  t.is(examples[1]!.image.height, 44);
  t.deepEqual(source.skipped.reasons, { 'missing caption': 1, 'empty caption': 1, 'corrupt image': 1, 'not an image': 2 });
  t.is(source.skipped.skipped, 5);
  t.true(source.skipped.samples.some((s) => s.key === 'e.png' && s.reason === 'corrupt image'));
});

test('a folder with images whose headers declare huge sizes: the process survives and counts them as skipped', (t) => {
  // In a child process: before the fix the 2^31 PNG aborted the whole process (SIGABRT in zlib).
  const dir = tempDir('bombs');
  write(join(dir, 'good.png'), pngBytes(8, 8, pattern(2)));
  write(join(dir, 'good.txt'), 'a red square');
  write(join(dir, 'huge.png'), pngDeclaring(0x7fffffff, 0x7fffffff));
  write(join(dir, 'huge.txt'), 'a blue circle');
  write(join(dir, 'wide.jpg'), jpegDeclaring(9000, 9000));
  write(join(dir, 'wide.txt'), 'a green triangle');
  const script = `
    import { openSource } from ${JSON.stringify(new URL('../lib/data/folder/index.js', import.meta.url).href)};
    const source = openSource({ kind: 'folder', path: ${JSON.stringify(dir)} });
    const keys = [];
    for await (const ex of source) keys.push(ex.key);
    console.log(JSON.stringify({ keys, skipped: source.skipped }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, `the child died (signal ${r.signal}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { keys: string[]; skipped: { skipped: number; samples: { key: string; reason: string }[] } };
  t.deepEqual(out.keys, ['good.png']);
  t.is(out.skipped.skipped, 2);
  t.deepEqual(out.skipped.samples.map((s) => s.key).sort(), ['huge.png', 'wide.jpg']);
});

test('folder keys are relative to the folder however its path is spelled', async (t) => {
  const dir = mixedFolder();
  const keys = (await collect(openFolder({ kind: 'folder', path: `${dir}/./sub/..//` }))).map((e) => e.key);
  t.deepEqual(keys, ['a.png', 'b.jpg', 'sub/f.png']);
});

test('folder source with the sharp decoder yields and skips the same files', async (t) => {
  const source = openFolder({ kind: 'folder', path: mixedFolder(), decoder: 'sharp' });
  t.deepEqual((await collect(source)).map((e) => e.key), ['a.png', 'b.jpg', 'sub/f.png']);
  t.deepEqual(source.skipped.reasons, { 'missing caption': 1, 'empty caption': 1, 'corrupt image': 1, 'not an image': 2 });
});

test('a nonexistent path is E_NOT_FOUND for every file source', async (t) => {
  const missing = join(tempDir('missing'), 'nope');
  for (const open of [
    () => openFolder({ kind: 'folder', path: missing }),
    () => openJsonl({ kind: 'jsonl', path: missing }),
    () => openWebDataset({ kind: 'webdataset', shards: [missing] }),
  ]) {
    const err = t.throws(open);
    t.is((err as DalleError).code, 'E_NOT_FOUND');
  }
  await t.throwsAsync(openSourceSpec({ kind: 'folder', path: missing }), { code: 'E_NOT_FOUND' } as never);
  await t.throwsAsync(openSourceSpec({ kind: 'nope' as never }), { instanceOf: DalleError });
});

test('JSONL source resolves paths against the manifest and skips bad records', async (t) => {
  const dir = tempDir('jsonl');
  write(join(dir, 'img', 'x.png'), pngBytes(10, 12, pattern(1)));
  write(join(dir, 'img', 'y.jpg'), jpegBytes(16, 16, pattern(2)));
  const lines = [
    { image: 'img/x.png', caption: 'first' },
    { image: 'img/gone.png', caption: 'missing file' },
    { image: 'img/y.jpg' },
    { image: 'img/y.jpg', caption: '' },
    { image: 'img/y.jpg', caption: 'second' },
  ].map((l) => JSON.stringify(l));
  lines.splice(2, 0, '{not json', '');
  write(join(dir, 'data.jsonl'), lines.join('\n') + '\n');
  const source = openJsonl({ kind: 'jsonl', path: join(dir, 'data.jsonl') });
  const examples = await collect(source);
  t.deepEqual(examples.map((e) => e.caption), ['first', 'second']);
  t.deepEqual(source.skipped.reasons, { 'missing image': 1, 'bad record': 1, 'missing caption': 1, 'empty caption': 1 });
});

test('WebDataset shards stream, pair by key, and a truncated shard is one skip', async (t) => {
  const dir = tempDir('wds');
  const good = tarBytes([
    { name: 'train/000.png', data: pngBytes(12, 10, pattern(1)) },
    { name: 'train/000.txt', data: 'zero' },
    { name: 'train/001.jpg', data: jpegBytes(16, 16, pattern(2)) },
    { name: 'train/001.txt', data: 'one' },
    { name: 'train/002.txt', data: 'caption only' },
    { name: 'train/003.png', data: pngBytes(8, 8, pattern(3)) },
    { name: 'train/004.json', data: '{}' },
    { name: 'train/004.png', data: pngBytes(8, 8, pattern(4)) },
    { name: 'train/004.txt', data: 'four' },
  ]);
  const second = tarBytes([
    { name: 'a.png', data: pngBytes(9, 9, pattern(5)) },
    { name: 'a.txt', data: 'five' },
    { name: 'b.png', data: pngBytes(9, 9, pattern(6)) },
    { name: 'b.txt', data: 'six' },
  ]);
  // Cut inside b.png's data: a survives, b is lost with the rest of the shard.
  const cut = second.subarray(0, 512 * 6 + 100);
  writeFileSync(join(dir, 'good.tar'), good);
  writeFileSync(join(dir, 'cut.tar'), cut);
  writeFileSync(join(dir, 'after.tar'), tarBytes([{ name: 'z.png', data: pngBytes(9, 9, pattern(7)) }, { name: 'z.txt', data: 'last' }]));
  const source = openWebDataset({ kind: 'webdataset', shards: ['good.tar', 'cut.tar', 'after.tar'].map((f) => join(dir, f)) });
  const examples = await collect(source);
  t.deepEqual(examples.map((e) => e.caption), ['zero', 'one', 'four', 'five', 'last']);
  t.is(examples[1]!.image.width, 16);
  t.deepEqual(source.skipped.reasons, { 'missing image': 1, 'missing caption': 1, 'truncated shard': 1 });
});

test('shards partition the records: disjoint, complete, each skip counted once', async (t) => {
  const dir = mixedFolder();
  const keys: string[] = [];
  const reports = [];
  for (let index = 0; index < 3; index++) {
    const source = openFolder({ kind: 'folder', path: dir, shard: { index, count: 3, block: 2 } });
    keys.push(...(await collect(source)).map((e) => e.key));
    reports.push(source.skipped);
  }
  t.deepEqual(keys.sort(), ['a.png', 'b.jpg', 'sub/f.png']);
  t.is(mergeSkipReports(reports).skipped, 5);
});
