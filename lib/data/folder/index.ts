/**
 * A folder of images, each captioned by a same-named .txt file (cat.png + cat.txt), searched recursively.
 * Examples come in sorted path order so a seed reproduces a run.
 */
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';

import type { Decoder } from '../image.js';
import type { Example } from '../types.js';
import { type ExampleSource, exampleFromBytes, inShard, requirePath, type ShardSpec, shardedSource, SkipCounter } from '../source.js';

export interface FolderSpec {
  kind: 'folder';
  path: string;
  shard?: ShardSpec;
  /** 'js' (default, reproducible) or 'sharp' (faster; needs the sharp package). */
  decoder?: Decoder;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

export function openSource(spec: FolderSpec): ExampleSource {
  requirePath('folder', spec.path, 'directory');
  const skips = new SkipCounter();
  return shardedSource(skips, () => iterate(spec, skips));
}

async function* iterate(spec: FolderSpec, skips: SkipCounter): AsyncGenerator<Example> {
  const files = (readdirSync(spec.path, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile() && !d.name.startsWith('.'))
    .map((d) => relative(spec.path, join(d.parentPath ?? d.path, d.name)).split(sep).join('/'))
    .sort();
  const fileSet = new Set(files);
  const stem = (f: string): string => f.slice(0, f.length - extname(f).length);
  const captioned = new Set(files.filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).map(stem));
  // A .txt is part of its image's record; a lone .txt or any other file is its own (skipped) record.
  const records = files.filter((f) => !(extname(f).toLowerCase() === '.txt' && captioned.has(stem(f))));
  for (let i = 0; i < records.length; i++) {
    if (!inShard(spec.shard, i)) continue;
    const rel = records[i]!;
    const ext = extname(rel).toLowerCase();
    if (ext === '.txt') {
      skips.add(rel, 'missing image');
      continue;
    }
    if (!IMAGE_EXT.has(ext)) {
      skips.add(rel, 'not an image');
      continue;
    }
    const txt = stem(rel) + '.txt';
    const caption = fileSet.has(txt) ? await readFile(join(spec.path, txt)) : undefined;
    const example = await exampleFromBytes(rel, await readFile(join(spec.path, rel)), caption, skips, spec.decoder);
    if (example !== null) yield example;
  }
}
