import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { DalleError } from '../lib/errors.js';
import { createLoader, type LoaderOptions } from '../lib/data/loader.js';
import type { SourceSpec } from '../lib/data/source.js';
import type { Batch } from '../lib/data/types.js';
import { jpegBytes, mixedFolder, pattern, plainFolder, pngBytes, tarBytes, tempDir, write } from './helpers/data-fixtures.js';

const plain = plainFolder(11);

async function all(spec: SourceSpec, options: LoaderOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of createLoader(spec, options)) out.push(b);
  return out;
}

/** Per-key image bytes, to compare runs whose batch grouping differs. */
function byKey(batches: Batch[]): Map<string, string> {
  const m = new Map<string, string>();
  const stride = batches[0]!.size ** 2 * 3;
  for (const b of batches) b.keys.forEach((k, i) => m.set(k, Buffer.from(b.images.subarray(i * stride, (i + 1) * stride)).toString('base64')));
  return m;
}

test('batches are packed [B, S, S, 3] with captions, every example exactly once', async (t) => {
  const batches = await all({ kind: 'folder', path: plain }, { batchSize: 4, size: 16, preset: 'transformer', seed: 1 });
  t.deepEqual(batches.map((b) => b.keys.length), [4, 4, 3]);
  for (const b of batches) {
    t.is(b.size, 16);
    t.is(b.images.length, b.keys.length * 16 * 16 * 3);
    t.deepEqual(b.captions, b.keys.map((k) => `caption ${Number(k.slice(0, 3))}`));
  }
  t.deepEqual(batches.flatMap((b) => b.keys), Array.from({ length: 11 }, (_, i) => `${String(i).padStart(3, '0')}.png`));
});

test('same seed and worker count give identical batches; augmentation is independent of worker count', async (t) => {
  const spec: SourceSpec = { kind: 'folder', path: plain };
  const opts: LoaderOptions = { batchSize: 3, size: 16, preset: 'dvae', seed: 5, workers: 2 };
  const a = await all(spec, opts);
  const b = await all(spec, opts);
  t.deepEqual(a, b);
  // Worker w owns record blocks w, w+2, …; batches alternate between workers.
  t.deepEqual(a.map((x) => x.keys[0]), ['000.png', '003.png', '006.png', '009.png']);
  const one = await all(spec, { ...opts, workers: 1 });
  t.deepEqual(byKey(one), byKey(a));
  const other = await all(spec, { ...opts, seed: 6 });
  t.notDeepEqual(byKey(other), byKey(a));
});

test('skips are counted once across workers and dropLast drops short batches', async (t) => {
  const dir = mixedFolder();
  for (const workers of [1, 2]) {
    const loader = createLoader({ kind: 'folder', path: dir }, { batchSize: 2, size: 8, preset: 'transformer', seed: 0, workers });
    const keys: string[] = [];
    for await (const b of loader) keys.push(...b.keys);
    t.deepEqual(keys.sort(), ['a.png', 'b.jpg', 'sub/f.png']);
    t.is(loader.skipped.skipped, 5);
    t.is(loader.skipped.reasons['not an image'], 2);
  }
  const full = await all({ kind: 'folder', path: plain }, { batchSize: 4, size: 8, preset: 'dvae', seed: 0, dropLast: true });
  t.deepEqual(full.map((b) => b.keys.length), [4, 4]);
});

test('JSONL and WebDataset sources run through two workers with each example and skip counted once', async (t) => {
  const dir = tempDir('loader-kinds');
  const members = [];
  const lines = [];
  for (let i = 0; i < 7; i++) {
    const img = i % 2 === 0 ? pngBytes(20, 18, pattern(i)) : jpegBytes(18, 20, pattern(i));
    const name = `s${i}.${i % 2 === 0 ? 'png' : 'jpg'}`;
    write(join(dir, name), img);
    lines.push(JSON.stringify({ image: name, caption: i === 3 ? '' : `c${i}` }));
    members.push({ name, data: img }, { name: `s${i}.txt`, data: i === 3 ? '' : `c${i}` });
  }
  writeFileSync(join(dir, 'd.jsonl'), lines.join('\n'));
  const tar = tarBytes(members);
  writeFileSync(join(dir, 'a.tar'), tar);
  writeFileSync(join(dir, 'b.tar'), tar.subarray(0, 1000));
  const opts: LoaderOptions = { batchSize: 2, size: 8, preset: 'dvae', seed: 3, workers: 2 };
  for (const spec of [{ kind: 'jsonl', path: join(dir, 'd.jsonl') }, { kind: 'webdataset', shards: [join(dir, 'a.tar'), join(dir, 'b.tar')] }] as SourceSpec[]) {
    const loader = createLoader(spec, opts);
    const captions: string[] = [];
    for await (const b of loader) captions.push(...b.captions);
    t.deepEqual(captions.sort(), ['c0', 'c1', 'c2', 'c4', 'c5', 'c6'], spec.kind);
    t.is(loader.skipped.reasons['empty caption'], 1, spec.kind);
    t.is(loader.skipped.skipped, spec.kind === 'webdataset' ? 2 : 1, spec.kind);
  }
});

test('prefetch is bounded: workers stop when the consumer does', async (t) => {
  const dir = plainFolder(40, 24, 24);
  const loader = createLoader({ kind: 'folder', path: dir }, { batchSize: 2, size: 8, preset: 'dvae', seed: 0, workers: 2, prefetch: 2 });
  const it = loader[Symbol.asyncIterator]();
  await it.next();
  // The workers fill the queue up to the bound (one batch each here) and then must stay there.
  for (let waited = 0; loader.buffered < 2 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  t.is(loader.buffered, 2);
  await new Promise((r) => setTimeout(r, 300));
  t.is(loader.buffered, 2, 'no batch decoded past the bound');
  await it.next();
  for (let waited = 0; loader.buffered < 2 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  t.is(loader.buffered, 2, 'consuming one batch frees exactly one slot');
  await it.return?.();
  await loader.close();
});

test('a nonexistent path rejects with E_NOT_FOUND; bad options are E_INVALID_ARGUMENT', async (t) => {
  const missing = join(tempDir('loader'), 'none');
  const err = await t.throwsAsync(all({ kind: 'folder', path: missing }, { batchSize: 2, size: 8, preset: 'dvae', seed: 0, workers: 2 }));
  t.true(err instanceof DalleError);
  t.is((err as DalleError).code, 'E_NOT_FOUND');
  for (const bad of [{ batchSize: 0 }, { size: 1.5 }, { workers: 0 }, { preset: 'other' }]) {
    const e = t.throws(() => createLoader({ kind: 'folder', path: plain }, { batchSize: 2, size: 8, preset: 'dvae', seed: 0, ...bad } as LoaderOptions));
    t.is((e as DalleError).code, 'E_INVALID_ARGUMENT');
  }
});

test('breaking out early, close() and abort end the workers', async (t) => {
  const spec: SourceSpec = { kind: 'folder', path: plain };
  const opts: LoaderOptions = { batchSize: 2, size: 8, preset: 'dvae', seed: 0, workers: 2 };
  let n = 0;
  for await (const _ of createLoader(spec, opts)) if (++n === 2) break;
  t.is(n, 2);
  const controller = new AbortController();
  const aborted = createLoader(spec, { ...opts, signal: controller.signal });
  let m = 0;
  for await (const _ of aborted) if (++m === 1) controller.abort();
  t.true(m <= 1 + 4, 'iteration stops soon after abort');
  const closed = createLoader(spec, opts);
  await closed.close();
  let k = 0;
  for await (const _ of closed) k++;
  t.is(k, 0);
});
