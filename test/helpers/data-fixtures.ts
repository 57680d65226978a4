/** On-the-fly image/tar fixtures for the data tests (nothing binary is checked in). */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `dalle-${prefix}-`));
}

/** RGBA pixels from f(x, y) → [r, g, b, a]. */
export function pixels(w: number, h: number, f: (x: number, y: number) => [number, number, number, number]): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(f(x, y), (y * w + x) * 4);
  return data;
}

export function pngBytes(w: number, h: number, f: (x: number, y: number) => [number, number, number, number], colorType: 0 | 2 | 4 | 6 = 2): Buffer {
  const png = new PNG({ width: w, height: h, colorType, inputHasAlpha: true });
  pixels(w, h, f).copy(png.data);
  return PNG.sync.write(png, { colorType, inputHasAlpha: true });
}

export function jpegBytes(w: number, h: number, f: (x: number, y: number) => [number, number, number, number], quality = 95): Buffer {
  return jpeg.encode({ width: w, height: h, data: pixels(w, h, f) }, quality).data;
}

/** A smooth pattern, distinct per `seed`, so JPEG round trips stay close. */
export const pattern = (seed: number) => (x: number, y: number): [number, number, number, number] =>
  [(x * 3 + seed * 17) & 255, (y * 5 + seed * 29) & 255, ((x + y) * 2 + seed) & 255, 255];

export function write(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** A minimal ustar writer: enough for the reader under test (regular files, names under 100 bytes). */
export function tarBytes(members: Array<{ name: string; data: string | Uint8Array }>): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = typeof m.data === 'string' ? Buffer.from(m.data) : Buffer.from(m.data);
    const h = Buffer.alloc(512);
    h.write(m.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * A folder dataset with one of each kind of bad input: 3 good examples (a.png, b.jpg, sub/f.png), a PNG without a
 * caption, an empty caption, a corrupt PNG, a non-image file, and a file that claims .png but is text.
 */
export function mixedFolder(): string {
  const dir = tempDir('folder');
  write(join(dir, 'a.png'), pngBytes(40, 30, pattern(1)));
  write(join(dir, 'a.txt'), ' a red square \n');
  write(join(dir, 'b.jpg'), jpegBytes(30, 44, pattern(2)));
  write(join(dir, 'b.txt'), 'a blue circle');
  write(join(dir, 'sub', 'f.png'), pngBytes(33, 33, pattern(3)));
  write(join(dir, 'sub', 'f.txt'), 'a green triangle');
  write(join(dir, 'c.png'), pngBytes(20, 20, pattern(4)));
  write(join(dir, 'd.png'), pngBytes(20, 20, pattern(5)));
  write(join(dir, 'd.txt'), '   \n');
  const corrupt = pngBytes(20, 20, pattern(6));
  write(join(dir, 'e.png'), corrupt.subarray(0, corrupt.length - 40));
  write(join(dir, 'e.txt'), 'truncated file');
  write(join(dir, 'notes.md'), '# not an image');
  write(join(dir, 'g.png'), 'plain text pretending');
  write(join(dir, 'g.txt'), 'fake png');
  return dir;
}

/** `n` good PNG examples named 000.png… with captions "caption i". */
export function plainFolder(n: number, w = 48, h = 40): string {
  const dir = tempDir('plain');
  for (let i = 0; i < n; i++) {
    const name = String(i).padStart(3, '0');
    write(join(dir, `${name}.png`), pngBytes(w + (i % 5), h, pattern(i)));
    write(join(dir, `${name}.txt`), `caption ${i}`);
  }
  return dir;
}

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body) >>> 0, 8 + data.length);
  return out;
}

/**
 * A PNG written byte by byte, for the kinds pngjs cannot write: palette images (colour type 3, with PLTE and an
 * optional tRNS) and 16-bit samples. `rows` holds each row's raw samples, big-endian, without the filter byte.
 */
export function rawPng(
  w: number,
  h: number,
  colorType: number,
  bitDepth: number,
  rows: Uint8Array[],
  extra: Array<{ type: string; data: Uint8Array }> = [],
): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const filtered = Buffer.concat(rows.map((r) => Buffer.concat([Buffer.from([0]), r])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...extra.map((c) => pngChunk(c.type, c.data)),
    pngChunk('IDAT', deflateSync(filtered)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A PNG whose IHDR declares width x height (CRC fixed up, so a decoder believes it), with the image's own data. */
export function pngDeclaring(width: number, height: number): Buffer {
  const png = Buffer.from(pngBytes(2, 2, pattern(1)));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
  return png;
}

/** A JPEG whose start-of-frame declares width x height. */
export function jpegDeclaring(width: number, height: number): Buffer {
  const jpg = Buffer.from(jpegBytes(16, 16, pattern(1)));
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  jpg.writeUInt16BE(height, sof + 5);
  jpg.writeUInt16BE(width, sof + 7);
  return jpg;
}
