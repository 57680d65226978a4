/**
 * Batches from any source, decoded and preprocessed in worker threads so the trainer never waits on JPEG decoding.
 *
 * Order is deterministic for a given seed and worker count: worker w owns the raw records in blocks
 * floor(i / batchSize) % workers === w, and batches are taken round-robin from the workers still running. Each
 * image's augmentation is seeded by (seed, epoch, key), so it does not depend on the worker count at all. Each
 * worker ends with at most one short batch (skips shorten batches); `dropLast` discards short batches.
 */
import type { Worker } from 'node:worker_threads';

import { DalleError, type DalleErrorCode } from '../errors.js';
import { spawnModuleWorker } from '../worker.js';
import type { WorkerInit, WorkerMessage } from './loader-worker.js';
import type { Preset } from './preprocess.js';
import { mergeSkipReports, type SourceSpec } from './source.js';
import type { Batch, SkipReport } from './types.js';

export interface LoaderOptions {
  batchSize: number;
  /** Output side in pixels. */
  size: number;
  preset: Preset;
  seed: number;
  /** Mixed into each image's seed so successive epochs see different crops. Default 0. */
  epoch?: number;
  /** Worker threads. Default 1. */
  workers?: number;
  /** Batches decoded ahead of the consumer, over all workers (at least one per worker). Default 2 per worker. */
  prefetch?: number;
  dropLast?: boolean;
  signal?: AbortSignal;
}

export interface Loader extends AsyncIterable<Batch> {
  /** Skips reported so far by all workers; complete once iteration has ended. */
  readonly skipped: SkipReport;
  /** Batches decoded and waiting for the consumer: never more than the prefetch bound (rounded up per worker). */
  readonly buffered: number;
  /** Terminates the workers; iteration then ends. Safe to call more than once. */
  close(): Promise<void>;
}

interface Slot {
  worker: Worker;
  queue: WorkerMessage[];
  skipped: SkipReport;
  ended: boolean;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new DalleError('E_INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

export function createLoader(spec: SourceSpec, options: LoaderOptions): Loader {
  const batchSize = positiveInt('batchSize', options.batchSize);
  const size = positiveInt('size', options.size);
  const count = positiveInt('workers', options.workers ?? 1);
  const prefetch = positiveInt('prefetch', options.prefetch ?? 2 * count);
  if (options.preset !== 'transformer' && options.preset !== 'dvae') {
    throw new DalleError('E_INVALID_ARGUMENT', `preset must be 'transformer' or 'dvae', got ${String(options.preset)}`);
  }
  if (!Number.isInteger(options.seed)) throw new DalleError('E_INVALID_ARGUMENT', `seed must be an integer`);
  const credits = Math.max(1, Math.ceil(prefetch / count));
  let slots: Slot[] | undefined;
  let closed = false;
  let started = false;
  let wake: (() => void) | undefined;
  const finalSkips: SkipReport[] = [];

  const start = (): Slot[] => {
    return Array.from({ length: count }, (_, index) => {
      const init: WorkerInit = {
        spec, shard: { index, count, block: batchSize }, batchSize, size, preset: options.preset,
        seed: options.seed, epoch: options.epoch ?? 0, credits,
      };
      const worker = spawnModuleWorker(new URL('./loader-worker.js', import.meta.url), init);
      const slot: Slot = { worker, queue: [], skipped: { skipped: 0, reasons: {}, samples: [] }, ended: false };
      worker.on('message', (msg: WorkerMessage) => {
        slot.queue.push(msg);
        wake?.();
      });
      worker.on('error', (err) => {
        slot.queue.push({ type: 'error', code: 'E_INTERNAL', message: err.message });
        wake?.();
      });
      // A worker killed from outside (out of memory) sends nothing: without this the consumer would wait forever.
      worker.on('exit', (code) => {
        if (closed || slot.queue.some((m) => m.type !== 'batch') || slot.ended) return;
        slot.queue.push({ type: 'error', code: 'E_INTERNAL', message: `worker ${index} exited with code ${code}` });
        wake?.();
      });
      return slot;
    });
  };

  const onAbort = (): void => void close();
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener('abort', onAbort);
    wake?.();
    if (slots) {
      for (const s of slots) finalSkips.push(s.skipped);
      await Promise.all(slots.map((s) => s.worker.terminate()));
    }
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  async function* iterate(): AsyncGenerator<Batch> {
    if (started) throw new DalleError('E_INVALID_ARGUMENT', 'a loader can be iterated only once; create another');
    started = true;
    if (closed || options.signal?.aborted) return;
    slots = start();
    const alive = [...slots];
    let turn = 0;
    try {
      while (alive.length > 0 && !closed) {
        turn %= alive.length;
        const slot = alive[turn]!;
        const msg = slot.queue.shift();
        if (msg === undefined) {
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        if (msg.type === 'error') throw new DalleError(msg.code as DalleErrorCode, `data loader: ${msg.message}`);
        slot.skipped = msg.skipped;
        if (msg.type === 'end') {
          slot.ended = true;
          alive.splice(turn, 1);
          continue;
        }
        slot.worker.postMessage('credit');
        turn++;
        if (options.dropLast && msg.count < batchSize) continue;
        yield { size, images: new Uint8Array(msg.images), captions: msg.captions, keys: msg.keys };
      }
    } finally {
      await close();
    }
  }

  return {
    get skipped() {
      return mergeSkipReports(closed ? finalSkips : (slots ?? []).map((s) => s.skipped));
    },
    get buffered() {
      return (slots ?? []).reduce((n, s) => n + s.queue.filter((m) => m.type === 'batch').length, 0);
    },
    close,
    [Symbol.asyncIterator]: iterate,
  };
}
