import test from 'ava';

import { sourceFor } from '../lib/cli/training.js';
import { openSource } from '../lib/data/mix/index.js';
import { createLoader } from '../lib/data/loader.js';
import type { Example } from '../lib/data/types.js';
import { DalleError } from '../lib/errors.js';

const A = { kind: 'shapes', size: 32, count: 8, split: 'train', seed: 1, capabilities: ['single'] } as const;
const B = { kind: 'shapes', size: 32, count: 4, split: 'train', seed: 2, capabilities: ['counting'] } as const;

async function all(spec: Parameters<typeof openSource>[0]): Promise<Example[]> {
  const out: Example[] = [];
  for await (const e of openSource(spec)) out.push(e);
  return out;
}

test('a mix interleaves its sources by weight, keeps every example once and prefixes keys with the source', async (t) => {
  const got = await all({ kind: 'mix', sources: [A, B], weights: [2, 1] });
  t.is(got.length, 12);
  // Weights 2:1, smooth round robin: A B A A B A … while both last, then the rest of A.
  t.deepEqual(got.slice(0, 6).map((e) => e.key.split(':')[0]), ['0', '1', '0', '0', '1', '0']);
  t.deepEqual(got.filter((e) => e.key.startsWith('1:')).length, 4);
  t.is(new Set(got.map((e) => e.key)).size, 12);
  const equal = await all({ kind: 'mix', sources: [A, B] });
  t.deepEqual(equal.slice(0, 8).map((e) => e.key.split(':')[0]), ['0', '1', '0', '1', '0', '1', '0', '1']);
});

test('the shards of a mix partition it, through the loader with several workers', async (t) => {
  const whole = (await all({ kind: 'mix', sources: [A, B] })).map((e) => e.caption).sort();
  const captions: string[] = [];
  for await (const b of createLoader({ kind: 'mix', sources: [A, B] }, { batchSize: 2, size: 32, preset: 'transformer', seed: 0, workers: 2 })) captions.push(...b.captions);
  t.is(captions.length, 12);
  t.deepEqual(captions.sort(), whole);
});

test('bad mixes are refused with what is wrong', async (t) => {
  for (const [spec, message] of [
    [{ kind: 'mix', sources: [] }, /non-empty array/],
    [{ kind: 'mix', sources: [A], weights: [0] }, /positive numbers/],
    [{ kind: 'mix', sources: [A, B], weights: [1] }, /2 positive numbers/],
    [{ kind: 'mix', sources: [{ kind: 'mix', sources: [A] }] }, /do not nest/],
  ] as const) {
    const err = t.throws(() => openSource(spec as never));
    t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT');
    t.regex(err!.message, message);
  }
});

test('--data names a mix with + and weighs its sources with *', (t) => {
  const flags = { scenes: 100, seed: 3 };
  t.deepEqual(sourceFor('shapes*3+emoji', 32, flags, 'train'), {
    kind: 'mix',
    sources: [{ kind: 'shapes', size: 32, count: 100, split: 'train', seed: 3 }, { kind: 'emoji', split: 'train', seed: 3 }],
    weights: [3, 1],
  });
  t.deepEqual(sourceFor('shapes+emoji', 32, flags, 'test')['weights'], [1, 1]);
  const err = t.throws(() => sourceFor('shapes*0+emoji', 32, flags, 'train'));
  t.regex(err!.message, /the weight of shapes\*0 must be a positive number/);
});
