/**
 * PNG and JPEG decoding to 8-bit RGB.
 *
 * Decoder choice, by measurement (benchmarks/data/throughput.ts, 300–500 px images, one thread, 2-core Xeon):
 * jpeg-js 38–46 images/s vs sharp 300–350; pngjs 89–95 vs sharp 155–180. sharp is 2–8× faster, but it is a native package that
 * is only a dev dependency here, and libjpeg-turbo's pixels differ slightly from jpeg-js's, so a seed would give
 * different batches depending on what is installed. So: pure JS ('js') is the default — always available and
 * bit-for-bit reproducible — and sharp is opt-in per source (`decoder: 'sharp'` in the spec) for throughput.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

import { DalleError } from '../errors.js';
import type { ImageRGB } from './types.js';

export type ImageFormat = 'png' | 'jpeg';
export type Decoder = 'js' | 'sharp';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format by magic bytes (a .png that is really a JPEG still decodes); null when neither. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Images larger than this are refused from the size their header declares, before any decoding: a forged header must
 * not make a worker allocate gigabytes or spend a minute (a 2 KB JPEG declaring 9000 × 9000 took 44 s and 2.4 GB in
 * jpeg-js), nor reach zlib with sizes it aborts the process on (a PNG declaring 2^31 - 1 on each side).
 */
export const IMAGE_LIMITS = { maxSide: 32768, maxPixels: 64 * 1024 * 1024 } as const;
const MAX_PIXELS = IMAGE_LIMITS.maxPixels;

/**
 * The width and height an image's header declares, read without decoding: PNG's IHDR, or a JPEG's first
 * start-of-frame marker. Null when the header cannot be found (the decoder then reports the file as corrupt).
 */
export function declaredSize(bytes: Uint8Array, format: ImageFormat): { width: number; height: number } | null {
  const be16 = (i: number) => (bytes[i]! << 8) | bytes[i + 1]!;
  const be32 = (i: number) => be16(i) * 65536 + be16(i + 2);
  if (format === 'png') {
    // Signature (8), then the first chunk, which must be IHDR: length (4), type (4), width (4), height (4).
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { width: be32(16), height: be32(20) };
  }
  // JPEG: walk the marker segments after SOI until a SOFn (C0-CF but DHT C4, JPG C8, DAC CC).
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // standalone markers
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data or end before any frame header
    const length = be16(i + 2);
    if (length < 2) return null;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > bytes.length) return null;
      return { width: be16(i + 7), height: be16(i + 5) };
    }
    i += 2 + length;
  }
  return null;
}

/** Refuses, by its header, an image over IMAGE_LIMITS or with a zero side (E_INVALID_ARGUMENT, naming the size). */
function checkDeclaredSize(bytes: Uint8Array, format: ImageFormat, name: string): void {
  const size = declaredSize(bytes, format);
  if (size === null) return;
  const { width, height } = size;
  if (width === 0 || height === 0 || width > IMAGE_LIMITS.maxSide || height > IMAGE_LIMITS.maxSide || width * height > MAX_PIXELS) {
    throw new DalleError(
      'E_INVALID_ARGUMENT',
      `${name}: its ${format} header declares ${width}x${height}, outside the limits ` +
        `(sides 1-${IMAGE_LIMITS.maxSide}, at most ${MAX_PIXELS} pixels); not decoded`,
    );
  }
}

/**
 * Decodes PNG or JPEG bytes to RGB. Alpha is composited on white (transparent emoji/icons would otherwise turn
 * black); grey, palette and 16-bit PNGs come out as 8-bit RGB. Throws DalleError E_INVALID_ARGUMENT for bytes that
 * are not an image or do not decode, so sources can count them as skips. `name` only labels the error.
 */
export function decodeImage(bytes: Uint8Array, name: string): ImageRGB {
  const format = sniffFormat(bytes);
  if (format === null) throw new DalleError('E_INVALID_ARGUMENT', `${name}: not a PNG or JPEG file`);
  checkDeclaredSize(bytes, format, name);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return format === 'png' ? decodePng(buf) : decodeJpeg(buf);
  } catch (err) {
    if (err instanceof DalleError) throw err;
    throw new DalleError('E_INVALID_ARGUMENT', `${name}: corrupt ${format} (${(err as Error).message})`, { cause: err });
  }
}

function decodePng(buf: Buffer): ImageRGB {
  // pngjs always expands to RGBA, 8 bits per channel unless skipRescale is set.
  const png = PNG.sync.read(buf);
  const { width, height } = png;
  checkSize(width, height);
  const rgba = png.data;
  const data = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; q < data.length; p += 4, q += 3) {
    const a = rgba[p + 3]!;
    if (a === 255) {
      data[q] = rgba[p]!;
      data[q + 1] = rgba[p + 1]!;
      data[q + 2] = rgba[p + 2]!;
    } else {
      const w = 255 - a;
      data[q] = (rgba[p]! * a + 255 * w + 127) / 255;
      data[q + 1] = (rgba[p + 1]! * a + 255 * w + 127) / 255;
      data[q + 2] = (rgba[p + 2]! * a + 255 * w + 127) / 255;
    }
  }
  return { width, height, data };
}

function decodeJpeg(buf: Buffer): ImageRGB {
  // formatAsRGBA: false gives 3 channels for grey, RGB and CMYK input alike.
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  checkSize(img.width, img.height);
  const data = img.data instanceof Uint8Array ? img.data : new Uint8Array(img.data);
  if (data.length !== img.width * img.height * 3) throw new Error('unexpected decoded size');
  return { width: img.width, height: img.height, data };
}

function checkSize(width: number, height: number): void {
  if (!(width > 0 && height > 0) || width * height > MAX_PIXELS) {
    throw new DalleError('E_INVALID_ARGUMENT', `image size ${width}x${height} out of range`);
  }
}

type SharpModule = typeof import('sharp');
let sharpModule: Promise<SharpModule['default']> | undefined;

function loadSharp(): Promise<SharpModule['default']> {
  sharpModule ??= import('sharp').then(
    (m) => m.default,
    (err: unknown) => {
      sharpModule = undefined;
      throw new DalleError('E_UNSUPPORTED', "decoder 'sharp' needs the sharp package (npm install sharp)", { cause: err });
    },
  );
  return sharpModule;
}

/** decodeImage with a choice of decoder; same output conventions (RGB, alpha on white) and the same errors. */
export async function decodeImageWith(bytes: Uint8Array, name: string, decoder: Decoder = 'js'): Promise<ImageRGB> {
  if (decoder === 'js') return decodeImage(bytes, name);
  if (decoder !== 'sharp') throw new DalleError('E_INVALID_ARGUMENT', `unknown decoder ${String(decoder)}`);
  const format = sniffFormat(bytes);
  if (format === null) throw new DalleError('E_INVALID_ARGUMENT', `${name}: not a PNG or JPEG file`);
  checkDeclaredSize(bytes, format, name);
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'truncated' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `${name}: corrupt ${format} (${(err as Error).message})`, { cause: err });
  }
}

/** Encodes an RGB image as an 8-bit RGB PNG (no alpha). */
export function encodePng(image: ImageRGB): Buffer {
  const { width, height, data } = image;
  checkSize(width, height);
  if (data.length !== width * height * 3) {
    throw new DalleError('E_INVALID_ARGUMENT', `image data has ${data.length} bytes; ${width}x${height} RGB needs ${width * height * 3}`);
  }
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}
