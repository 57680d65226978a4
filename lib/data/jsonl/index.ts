/**
 * A JSONL manifest, one {"image": path, "caption": text} per line; image paths are relative to the manifest's
 * folder unless absolute. The manifest is streamed line by line, so it may be larger than memory.
 */
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import type { Decoder } from '../image.js';
import type { Example } from '../types.js';
import { type ExampleSource, exampleFromBytes, inShard, requirePath, type ShardSpec, shardedSource, SkipCounter } from '../source.js';

export interface JsonlSpec {
  kind: 'jsonl';
  path: string;
  /** Folder that relative image paths start from; the manifest's folder by default. */
  root?: string;
  shard?: ShardSpec;
  /** 'js' (default, reproducible) or 'sharp' (faster; needs the sharp package). */
  decoder?: Decoder;
}

export function openSource(spec: JsonlSpec): ExampleSource {
  requirePath('jsonl', spec.path, 'file');
  const skips = new SkipCounter();
  return shardedSource(skips, () => iterate(spec, skips));
}

async function* iterate(spec: JsonlSpec, skips: SkipCounter): AsyncGenerator<Example> {
  const root = spec.root ?? dirname(spec.path);
  const lines = createInterface({ input: createReadStream(spec.path), crlfDelay: Infinity });
  let index = -1;
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    index++;
    if (!inShard(spec.shard, index)) continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      skips.add(`${spec.path}:${lineNo}`, 'bad record');
      continue;
    }
    const { image, caption } = (record ?? {}) as { image?: unknown; caption?: unknown };
    if (typeof image !== 'string' || image === '') {
      skips.add(`${spec.path}:${lineNo}`, 'bad record');
      continue;
    }
    const bytes = await readImageFile(resolve(root, image));
    if (bytes === null) {
      skips.add(image, 'missing image');
      continue;
    }
    const example = await exampleFromBytes(image, bytes, typeof caption === 'string' ? caption : undefined, skips, spec.decoder);
    if (example !== null) yield example;
  }
}

/**
 * A regular file's bytes, or null when the path is missing, unreadable or not a regular file. A record may name
 * anything: /dev/zero never ends (readFile grew until memory ran out), and a FIFO blocks the open forever, so the
 * file is opened non-blocking and checked before anything is read.
 */
async function readImageFile(path: string): Promise<Buffer | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    if (!(await handle.stat()).isFile()) return null;
    return await handle.readFile();
  } catch {
    return null;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
