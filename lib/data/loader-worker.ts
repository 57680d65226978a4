/**
 * One loader worker: opens its shard of the source from the JSON spec, preprocesses, packs batches and posts them
 * back with their buffers transferred. It holds at most `credits` unacknowledged batches, which is what bounds the
 * prefetch queue: when the main thread stops consuming, the worker stops decoding.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { DalleError } from '../errors.js';
import { exampleSeed, mulberry32, type Preset, preprocess } from './preprocess.js';
import { inShard, openSourceSpec, type ShardSpec, type SourceSpec } from './source.js';
import type { SkipReport } from './types.js';

export interface WorkerInit {
  spec: SourceSpec;
  shard: ShardSpec;
  batchSize: number;
  size: number;
  preset: Preset;
  seed: number;
  epoch: number;
  credits: number;
}

export type WorkerMessage =
  | { type: 'batch'; images: ArrayBuffer; count: number; captions: string[]; keys: string[]; skipped: SkipReport }
  | { type: 'end'; skipped: SkipReport }
  | { type: 'error'; code: string; message: string };

const EMPTY: SkipReport = { skipped: 0, reasons: {}, samples: [] };

async function run(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  let credits = init.credits;
  let wake: (() => void) | undefined;
  port.on('message', () => {
    credits++;
    wake?.();
  });
  const source = await openSourceSpec({ ...init.spec, shard: init.shard });
  // A source that ignores `shard` yields everything: filter here, and let only shard 0 report its skips so they are
  // not counted once per worker.
  const selfSharded = source.sharded !== true;
  const skipped = (): SkipReport => (selfSharded && init.shard.index !== 0 ? EMPTY : source.skipped);
  const { batchSize, size } = init;
  const stride = size * size * 3;
  let images = new Uint8Array(batchSize * stride);
  let captions: string[] = [];
  let keys: string[] = [];
  const flush = async (): Promise<void> => {
    const count = keys.length;
    const buffer = count === batchSize ? images.buffer : images.slice(0, count * stride).buffer;
    const msg: WorkerMessage = { type: 'batch', images: buffer as ArrayBuffer, count, captions, keys, skipped: skipped() };
    port.postMessage(msg, [buffer as ArrayBuffer]);
    images = new Uint8Array(batchSize * stride);
    captions = [];
    keys = [];
    credits--;
    while (credits <= 0) await new Promise<void>((r) => (wake = r));
    wake = undefined;
  };
  let index = -1;
  for await (const ex of source) {
    index++;
    if (selfSharded && !inShard(init.shard, index)) continue;
    const rand = mulberry32(exampleSeed(init.seed, ex.key, init.epoch));
    const out = preprocess(ex.image, init.preset, size, rand);
    images.set(out.data, keys.length * stride);
    captions.push(ex.caption);
    keys.push(ex.key);
    if (keys.length === batchSize) await flush();
  }
  if (keys.length > 0) await flush();
  port.postMessage({ type: 'end', skipped: skipped() } satisfies WorkerMessage);
}

run(workerData as WorkerInit).catch((err: unknown) => {
  const code = err instanceof DalleError ? err.code : 'E_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  parentPort!.postMessage({ type: 'error', code, message } satisfies WorkerMessage);
});
