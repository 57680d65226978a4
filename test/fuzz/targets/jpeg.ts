import { decodeImage } from '../../../lib/data/image.js';
import { expectDalleError } from './_expect.js';
import { checkDecodedImage, checkDeclaredSizes } from './_image.js';

export const description = 'decodeImage on JPEG bytes: declaredSize, the header limits, 8-bit RGB out, a lossless PNG round trip';

export function fuzz(data: Buffer): void {
  checkDeclaredSizes(data);
  const image = expectDalleError(() => decodeImage(data, 'fuzz.jpg'));
  if (image !== undefined) checkDecodedImage(image, data, 'fuzz.jpg');
}
