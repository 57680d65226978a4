import { Readable } from 'node:stream';

import { openSource } from '../../../lib/data/webdataset/index.js';
import { readTar, TruncatedTarError } from '../../../lib/data/webdataset/tar.js';
import { invariant } from './_expect.js';
import { checkExample } from './_image.js';
import { writeTemp } from './_temp.js';

export const description = 'readTar over the bytes (members, or TruncatedTarError), then the webdataset source over them as a shard: every sample yielded or counted as skipped, nothing thrown';

/** The sample key of a member name, as lib/data/webdataset defines it (up to the first '.' of the last component). */
function sampleKey(name: string): string {
  const dot = name.indexOf('.', name.lastIndexOf('/') + 1);
  return dot < 0 ? name : name.slice(0, dot);
}

/** The number of samples and whether the stream was cut short, as readTar sees the bytes. */
async function scan(data: Buffer): Promise<{ samples: number; truncated: boolean }> {
  let samples = 0;
  let key: string | undefined;
  try {
    for await (const member of readTar(Readable.from([data]))) {
      invariant(typeof member.name === 'string' && Buffer.isBuffer(member.data), () => 'readTar yielded a member without a name or data');
      invariant(member.data.length <= data.length, () => `member ${member.name} has ${member.data.length} bytes, more than the whole stream`);
      const k = sampleKey(member.name);
      if (k !== key) samples++;
      key = k;
    }
    return { samples, truncated: false };
  } catch (err) {
    // readTar's only way to refuse: the source turns it into one skip.
    if (err instanceof TruncatedTarError) return { samples, truncated: true };
    throw err;
  }
}

/** A copy whose header checksums are made right, so that mutations reach past the checksum into the fields. */
function withFixedChecksums(data: Buffer): Buffer {
  const out = Buffer.from(data);
  for (let at = 0; at + 512 <= out.length; ) {
    const header = out.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) break;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

async function fuzzShard(data: Buffer): Promise<void> {
  const { samples, truncated } = await scan(data);
  const source = openSource({ kind: 'webdataset', shards: writeTemp('shard.tar', data) });
  let yielded = 0;
  // Bad members are the source's to count: anything thrown from here, DalleError or not, is a finding.
  for await (const example of source) {
    yielded++;
    checkExample(example);
  }
  const { skipped, reasons } = source.skipped;
  invariant(reasons['unreadable shard'] === undefined, () => 'the shard was "unreadable": something other than TruncatedTarError escaped readTar');
  // A cut-off shard loses its unfinished sample and counts one skip for it (one even when no member was read).
  const expected = truncated ? Math.max(samples, 1) : samples;
  invariant(yielded + skipped === expected, () => `${samples} samples${truncated ? ' (truncated)' : ''}, but ${yielded} yielded and ${skipped} skipped (${JSON.stringify(reasons)})`);
}

export async function fuzz(data: Buffer): Promise<void> {
  await fuzzShard(data);
  const fixed = withFixedChecksums(data);
  if (!fixed.equals(data)) await fuzzShard(fixed);
}
