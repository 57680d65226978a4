/**
 * WebDataset tar shards, streamed: members sharing a key (the name up to the first '.' of its last path
 * component, as WebDataset defines it) form one sample; the image is its .png/.jpg/.jpeg member and the caption its
 * .txt member. A truncated or damaged shard ends that shard with one 'truncated shard' skip; later shards go on.
 */
import { createReadStream } from 'node:fs';

import { DalleError } from '../../errors.js';
import type { Decoder } from '../image.js';
import type { Example } from '../types.js';
import { type ExampleSource, exampleFromBytes, inShard, requirePath, type ShardSpec, shardedSource, SkipCounter } from '../source.js';
import { readTar, type TarMember, TruncatedTarError } from './tar.js';

export interface WebDatasetSpec {
  kind: 'webdataset';
  /** Shard paths, read in this order. */
  shards: string | string[];
  shard?: ShardSpec;
  /** 'js' (default, reproducible) or 'sharp' (faster; needs the sharp package). */
  decoder?: Decoder;
}

const IMAGE_EXT = ['png', 'jpg', 'jpeg'];

export function openSource(spec: WebDatasetSpec): ExampleSource {
  const shards = typeof spec.shards === 'string' ? [spec.shards] : spec.shards;
  if (!Array.isArray(shards) || shards.length === 0 || !shards.every((s) => typeof s === 'string')) {
    throw new DalleError('E_INVALID_ARGUMENT', 'webdataset source needs shards: a path or a list of paths');
  }
  for (const s of shards) requirePath('webdataset', s, 'file', 'shard');
  const skips = new SkipCounter();
  return shardedSource(skips, () => iterate(shards, spec.shard, spec.decoder, skips));
}

function splitKey(name: string): [key: string, ext: string] {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot + 1).toLowerCase()];
}

async function* iterate(shards: string[], shard: ShardSpec | undefined, decoder: Decoder | undefined, skips: SkipCounter): AsyncGenerator<Example> {
  let index = -1;
  const finish = async (key: string, members: Map<string, Buffer>): Promise<Example | null> => {
    index++;
    if (!inShard(shard, index)) return null;
    const imageExt = IMAGE_EXT.find((e) => members.has(e));
    if (imageExt === undefined) return skips.add(key, 'missing image'), null;
    const txt = members.get('txt');
    return exampleFromBytes(key, members.get(imageExt)!, txt, skips, decoder);
  };
  for (const path of shards) {
    const stream = createReadStream(path, { highWaterMark: 1 << 20 });
    let key: string | undefined;
    let members = new Map<string, Buffer>();
    try {
      for await (const member of readTar(stream) as AsyncGenerator<TarMember>) {
        const [k, ext] = splitKey(member.name);
        if (k !== key) {
          if (key !== undefined) {
            const ex = await finish(`${path}:${key}`, members);
            if (ex !== null) yield ex;
          }
          key = k;
          members = new Map();
        }
        members.set(ext, member.data);
      }
      if (key !== undefined) {
        const ex = await finish(`${path}:${key}`, members);
        if (ex !== null) yield ex;
      }
    } catch (err) {
      if (err instanceof DalleError) throw err;
      // The partial sample is lost with the rest of the shard; counted once (by the shard owning the next index).
      index++;
      const reason = err instanceof TruncatedTarError ? 'truncated shard' : 'unreadable shard';
      if (inShard(shard, index)) skips.add(`${path}${key !== undefined ? `:${key}` : ''}`, reason);
    } finally {
      stream.destroy();
    }
  }
}
