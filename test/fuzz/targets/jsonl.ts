import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { openSource } from '../../../lib/data/jsonl/index.js';
import { invariant } from './_expect.js';
import { checkExample } from './_image.js';
import { jpegDeclaring, jpegFile, pngDeclaring, rgbPng } from './_samples.js';
import { tempSubfolder } from './_temp.js';

export const description = 'the jsonl source over the bytes as a manifest whose lines may name fixed images beside it (good, corrupt, and headers declaring 2^31 or 9000x9000): every line yielded or counted as skipped, nothing thrown';

/** The files the corpus's lines name, written once. */
function imagesFolder(): string {
  const dir = tempSubfolder('jsonl');
  if (existsSync(join(dir, 'a.png'))) return dir;
  const good = rgbPng(3, 2);
  const files: Record<string, Uint8Array | string> = {
    'a.png': good,
    'b.jpg': jpegFile(8, 8, 2),
    'corrupt.png': good.subarray(0, good.length - 20),
    'huge.png': pngDeclaring(0x7fffffff, 0x7fffffff),
    'wide.jpg': jpegDeclaring(9000, 9000),
    'notes.txt': 'not an image\n',
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** Lines as readline splits them (\n, \r\n or a lone \r), without the blank ones the source passes over. */
function recordLines(data: Buffer): number {
  return data.toString('utf8').split(/\r\n|\n|\r/).filter((line) => line.trim() !== '').length;
}

export async function fuzz(data: Buffer): Promise<void> {
  const path = join(imagesFolder(), 'manifest.jsonl');
  writeFileSync(path, data);
  const source = openSource({ kind: 'jsonl', path });
  let yielded = 0;
  // Bad lines and bad images are the source's to count: anything thrown from here, DalleError or not, is a finding.
  for await (const example of source) {
    yielded++;
    checkExample(example);
  }
  const lines = recordLines(data);
  const { skipped, reasons } = source.skipped;
  invariant(yielded + skipped === lines, () => `${lines} records, but ${yielded} yielded and ${skipped} skipped (${JSON.stringify(reasons)})`);
}
