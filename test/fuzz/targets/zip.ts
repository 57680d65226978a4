import { crc32 } from 'node:zlib';

import { ZipArchive } from '../../../lib/formats/zip.js';
import { expectDalleError, invariant } from './_expect.js';

export const description = 'ZipArchive over the bytes: the central directory, then every entry read with and without its CRC check';

/** Bytes inflated per input: overlapping entries can each reuse one deflate stream. */
const MAX_READ_BYTES = 64 << 20;

export function fuzz(data: Buffer): void {
  ZipArchive.looksLikeZip(data);
  const zip = expectDalleError(() => new ZipArchive(data));
  if (zip === undefined) return;
  invariant(zip.names().length === zip.entries.size, () => `${zip.names().length} names for ${zip.entries.size} entries`);
  let budget = MAX_READ_BYTES;
  for (const [name, entry] of zip.entries) {
    if (entry.uncompressedSize > budget) break;
    budget -= entry.uncompressedSize;
    const checked = expectDalleError(() => zip.read(name));
    invariant(checked === undefined || (crc32(checked) >>> 0) === entry.crc32, () => `${name}: read with a CRC check, but the CRC differs`);
    const unchecked = expectDalleError(() => zip.read(name, { verifyCrc: false }));
    for (const out of [checked, unchecked]) {
      invariant(out === undefined || out.length === entry.uncompressedSize, () => `${name}: ${out?.length} bytes read, ${entry.uncompressedSize} recorded`);
    }
    invariant(checked === undefined || unchecked !== undefined, () => `${name}: reads with its CRC check but not without`);
  }
  expectDalleError(() => zip.read('\u0000 no such entry'));
}
