/** What a decoded image must satisfy, whoever decoded it (the image targets, and the data sources' examples). */
import { declaredSize, encodePng, decodeImage, IMAGE_LIMITS, sniffFormat } from '../../../lib/data/image.js';
import type { Example, ImageRGB } from '../../../lib/data/types.js';
import { invariant } from './_expect.js';

/**
 * The most pixels a file's bytes can stand for. PNG: deflate expands at most 1032:1, and a 1-bit pixel is 1/8 byte.
 * JPEG (Huffman-coded, all jpeg-js reads): every 8x8 block costs at least one bit. Beyond this the decoder made up
 * pixels that are not in the file, which is how a few bytes of header become gigabytes.
 */
const PIXELS_PER_BYTE = { png: 8 * 1032, jpeg: 64 * 8 } as const;
const SLACK_PIXELS = 4096;
/** Larger images are not re-encoded: the round trip is for coverage, not a benchmark. */
const MAX_ROUND_TRIP_PIXELS = 1 << 20;

/** sniffFormat and declaredSize must give null or an answer a header can hold, for any bytes and either format. */
export function checkDeclaredSizes(bytes: Uint8Array): void {
  const sniffed = sniffFormat(bytes);
  invariant(sniffed === null || sniffed === 'png' || sniffed === 'jpeg', () => `sniffFormat gave ${String(sniffed)}`);
  for (const format of ['png', 'jpeg'] as const) {
    const size = declaredSize(bytes, format);
    if (size === null) continue;
    const max = format === 'png' ? 2 ** 32 - 1 : 0xffff;
    for (const side of [size.width, size.height]) {
      invariant(Number.isInteger(side) && side >= 0 && side <= max, () => `declaredSize(${format}) gave side ${side}`);
    }
  }
}

/** An image as every source hands it on: a size within IMAGE_LIMITS and exactly width x height x 3 bytes. */
export function checkImageShape(image: ImageRGB, what: string): void {
  const { width, height, data } = image;
  invariant(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1, () => `${what}: decoded size ${width}x${height}`);
  invariant(width <= IMAGE_LIMITS.maxSide && height <= IMAGE_LIMITS.maxSide && width * height <= IMAGE_LIMITS.maxPixels, () => `${what}: decoded ${width}x${height}, outside IMAGE_LIMITS`);
  invariant(data instanceof Uint8Array && data.length === width * height * 3, () => `${what}: ${width}x${height} RGB with ${data.length} bytes`);
}

/** Checks a decoded image against the limits, its own header and the bytes it came from. */
export function checkDecodedImage(image: ImageRGB, bytes: Uint8Array, what: string): void {
  checkImageShape(image, what);
  const { width, height, data } = image;
  const format = sniffFormat(bytes);
  invariant(format !== null, () => `${what}: decoded, but its bytes are neither PNG nor JPEG`);
  const declared = declaredSize(bytes, format);
  // The header check before decoding only protects what it can see: a decoder that found another size went around it.
  invariant(declared !== null, () => `${what}: decoded ${width}x${height}, but declaredSize finds no ${format} header, so the size limits were never checked`);
  invariant(declared.width === width && declared.height === height, () => `${what}: the header check saw ${declared.width}x${declared.height} but the decoder made ${width}x${height}`);
  const most = PIXELS_PER_BYTE[format] * bytes.length + SLACK_PIXELS;
  invariant(width * height <= most, () => `${what}: ${width}x${height} pixels decoded from ${bytes.length} bytes, more than the data can hold (${most})`);
  if (width * height <= MAX_ROUND_TRIP_PIXELS) {
    const again = decodeImage(encodePng(image), `${what} re-encoded`);
    invariant(again.width === width && again.height === height && Buffer.compare(again.data, data) === 0, () => `${what}: re-encoding as PNG did not round-trip`);
  }
}

/** An example a data source yielded: a well-formed image and the trimmed, non-empty caption the sources promise. */
export function checkExample(example: Example): void {
  checkImageShape(example.image, example.key);
  invariant(typeof example.caption === 'string' && example.caption !== '' && example.caption === example.caption.trim(), () => `${example.key}: caption ${JSON.stringify(example.caption)}`);
}
