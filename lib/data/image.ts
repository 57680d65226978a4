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

/** Images larger than this are refused: a forged header must not make a worker allocate gigabytes. */
const MAX_PIXELS = 64 * 1024 * 1024;

/**
 * Decodes PNG or JPEG bytes to RGB. Alpha is composited on white (transparent emoji/icons would otherwise turn
 * black); grey, palette and 16-bit PNGs come out as 8-bit RGB. Throws DalleError E_INVALID_ARGUMENT for bytes that
 * are not an image or do not decode, so sources can count them as skips. `name` only labels the error.
 */
export function decodeImage(bytes: Uint8Array, name: string): ImageRGB {
  const format = sniffFormat(bytes);
  if (format === null) throw new DalleError('E_INVALID_ARGUMENT', `${name}: not a PNG or JPEG file`);
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
