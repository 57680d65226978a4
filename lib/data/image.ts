/**
 * PNG and JPEG decoding to 8-bit RGB.
 *
 * Decoder choice, by measurement (benchmarks/data/throughput.ts, 300–500 px images, one thread, 2-core Xeon):
 * jpeg-js 38–46 images/s vs sharp 300–350; pngjs 89–95 vs sharp 155–180. sharp is 2–8× faster, but it is a native package that
 * is only a dev dependency here, and libjpeg-turbo's pixels differ slightly from jpeg-js's, so a seed would give
 * different batches depending on what is installed. So: pure JS ('js') is the default — always available and
 * bit-for-bit reproducible — and sharp is opt-in per source (`decoder: 'sharp'` in the spec) for throughput.
 */
import { inflateSync } from 'node:zlib';

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

function refuse(name: string, why: string): never {
  throw new DalleError('E_INVALID_ARGUMENT', `${name}: ${why}; not decoded`);
}

function checkLimits(width: number, height: number, format: ImageFormat, name: string): void {
  if (width === 0 || height === 0 || width > IMAGE_LIMITS.maxSide || height > IMAGE_LIMITS.maxSide || width * height > MAX_PIXELS) {
    refuse(name, `its ${format} header declares ${width}x${height}, outside the limits (sides 1-${IMAGE_LIMITS.maxSide}, at most ${MAX_PIXELS} pixels)`);
  }
}

/**
 * Deflate expands at most 1032-fold (a 258-byte match in 2 bits), so a PNG's image data bounds the pixel bytes it can
 * hold; pngjs pads what is missing, so without this a 68-byte file "decodes" to 8192 x 8192 black pixels (0.9 GB).
 */
const DEFLATE_MAX_RATIO = 1032;
/** Each 8x8 block of a JPEG costs at least one bit (its DC code), so a file of n bytes holds at most 512n pixels. */
const JPEG_PIXELS_PER_BYTE = 512;
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7's passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** Bytes of filtered scanlines (a filter byte per row) the image data of a PNG of this header inflates to. */
function pngRawBytes(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w === 0 || h === 0 ? 0 : h * (1 + Math.ceil((w * bitsPerPixel) / 8)));
  if (!interlaced) return rows(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += rows(Math.max(0, Math.ceil((width - x0) / dx)), Math.max(0, Math.ceil((height - y0) / dy)));
  return total;
}

/**
 * Walks a PNG's chunks as pngjs reads them and refuses what would make the decoder allocate past what the file can
 * hold: a second IHDR (pngjs takes the last one, so a first IHDR of 2 x 2 let a second of 2^31 x 2^31 reach zlib,
 * which aborts the process), a header larger than its image data can inflate to, and interlaced image data that
 * inflates past its header's size (pngjs inflates interlaced data without a bound: 1 MB became 1 GB).
 */
function checkPng(bytes: Uint8Array, name: string): void {
  const size = declaredSize(bytes, 'png');
  if (size === null) return; // no IHDR first: pngjs refuses the file before reading any image data
  checkLimits(size.width, size.height, 'png', name);
  const bitDepth = bytes[24]!;
  const channels = PNG_CHANNELS[bytes[25]!];
  const interlaced = bytes[28] === 1;
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const imageData: Buffer[] = [];
  let imageBytes = 0;
  for (let at = 8, first = true; at + 12 <= data.length; first = false) {
    const length = data.readUInt32BE(at);
    const type = data.toString('latin1', at + 4, at + 8);
    if (type === 'IHDR' && !first) refuse(name, 'png with more than one IHDR chunk');
    if (at + 12 + length > data.length) break; // truncated: pngjs stops reading here too
    if (type === 'IDAT') {
      imageData.push(data.subarray(at + 8, at + 8 + length));
      imageBytes += length;
    }
    if (type === 'IEND') break;
    at += 12 + length;
  }
  if (channels === undefined) return; // a colour type pngjs refuses
  const raw = pngRawBytes(size.width, size.height, channels * bitDepth, interlaced);
  if (raw > imageBytes * DEFLATE_MAX_RATIO + 1024) {
    refuse(name, `its png header declares ${size.width}x${size.height} (${raw} bytes of pixel data), but its ${imageBytes} bytes of image data inflate to at most ${imageBytes * DEFLATE_MAX_RATIO}`);
  }
  if (interlaced) {
    try {
      inflateSync(Buffer.concat(imageData), { maxOutputLength: raw });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') refuse(name, `its image data inflates past the ${raw} bytes its png header declares`);
      refuse(name, `corrupt png (${(err as Error).message})`);
    }
  }
}

/** The pixel count a JPEG of `bytes` may decode to: IMAGE_LIMITS, and what its bytes can hold. */
function jpegPixelBound(bytes: Uint8Array): number {
  return Math.min(MAX_PIXELS, JPEG_PIXELS_PER_BYTE * bytes.length);
}

/**
 * Refuses a JPEG whose frame header our walk cannot find before the scan (jpeg-js reads some malformed segments
 * differently, e.g. ignoring a DRI's length, and then found a 9000 x 9000 frame the walk never saw), and one whose
 * declared size is over the limits or more than its bytes can hold.
 */
function checkJpeg(bytes: Uint8Array, name: string): void {
  const size = declaredSize(bytes, 'jpeg');
  if (size === null) refuse(name, 'corrupt jpeg (no frame header before the scan data)');
  checkLimits(size.width, size.height, 'jpeg', name);
  if (size.width * size.height > jpegPixelBound(bytes)) {
    refuse(name, `its jpeg header declares ${size.width}x${size.height}, more than its ${bytes.length} bytes can hold (${JPEG_PIXELS_PER_BYTE} pixels a byte)`);
  }
}

/** Everything an image's header tells before decoding: the format's own checks above. */
function checkHeader(bytes: Uint8Array, format: ImageFormat, name: string): void {
  if (format === 'png') checkPng(bytes, name);
  else checkJpeg(bytes, name);
}

/** The decoder must have made the image the header check saw; any other size went around the check. */
function checkDecodedSize(image: { width: number; height: number }, bytes: Uint8Array, format: ImageFormat, name: string): void {
  const declared = declaredSize(bytes, format);
  if (declared !== null && (declared.width !== image.width || declared.height !== image.height)) {
    refuse(name, `its ${format} header declares ${declared.width}x${declared.height}, but it decodes to ${image.width}x${image.height}`);
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
  checkHeader(bytes, format, name);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let image: ImageRGB;
  try {
    image = format === 'png' ? decodePng(buf) : decodeJpeg(buf);
  } catch (err) {
    if (err instanceof DalleError) throw err;
    throw new DalleError('E_INVALID_ARGUMENT', `${name}: corrupt ${format} (${(err as Error).message})`, { cause: err });
  }
  checkDecodedSize(image, bytes, format, name);
  return image;
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
  // The pixel bound again inside jpeg-js, at the frame header it actually reads.
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024, maxResolutionInMP: jpegPixelBound(buf) / 1e6 });
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
  checkHeader(bytes, format, name);
  const sharp = await loadSharp();
  let image: ImageRGB;
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'truncated' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    image = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `${name}: corrupt ${format} (${(err as Error).message})`, { cause: err });
  }
  checkDecodedSize(image, bytes, format, name);
  return image;
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
