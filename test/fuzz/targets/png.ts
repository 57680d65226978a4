import { crc32 } from 'node:zlib';

import { decodeImage } from '../../../lib/data/image.js';
import { expectDalleError } from './_expect.js';
import { checkDecodedImage, checkDeclaredSizes } from './_image.js';

export const description = 'decodeImage on PNG bytes, as they are and with their chunk CRCs made right: declaredSize, the header limits, 8-bit RGB out, a lossless PNG round trip';

/** A copy with every chunk's CRC recomputed, so that mutations reach past pngjs's CRC check into the chunks. */
function withFixedCrcs(data: Buffer): Buffer {
  const out = Buffer.from(data);
  for (let at = 8; at + 12 <= out.length; ) {
    const length = out.readUInt32BE(at);
    if (at + 12 + length > out.length) break;
    out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + length)) >>> 0, at + 8 + length);
    at += 12 + length;
  }
  return out;
}

function decode(data: Buffer): void {
  const image = expectDalleError(() => decodeImage(data, 'fuzz.png'));
  if (image !== undefined) checkDecodedImage(image, data, 'fuzz.png');
}

export function fuzz(data: Buffer): void {
  checkDeclaredSizes(data);
  decode(data);
  const fixed = withFixedCrcs(data);
  if (!fixed.equals(data)) decode(fixed);
}
