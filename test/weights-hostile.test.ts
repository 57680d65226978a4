/**
 * Weights files whose `__metadata__` lies. The config in a file is only text: each case below edits nothing but
 * the metadata of a small, valid file. Before the fix the loaders built the model first (65536 dVAE blocks per group
 * hung, 10⁹ transformer layers hung, 65536 CLIP text layers grew past 3 GB); now each is refused by a bound or by
 * the file's own tensor table, at once and without allocating. The loads run in a child process so a hang is a
 * failure that names the file, not a stalled suite.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { readSafetensors, writeSafetensors } from '../lib/formats/safetensors.js';
import { Clip } from '../lib/models/clip/model.js';
import { saveClip } from '../lib/models/clip/io.js';
import { DVAE_LIMITS } from '../lib/models/dvae/config.js';
import { saveDvae } from '../lib/models/dvae/io.js';
import { Dvae } from '../lib/models/dvae/model.js';
import { TRANSFORMER_LIMITS } from '../lib/models/transformer/config.js';
import { saveTransformer } from '../lib/models/transformer/io.js';
import { DalleTransformer } from '../lib/models/transformer/model.js';
import { tempDir } from './helpers/data-fixtures.js';

const CHILD = fileURLToPath(new URL('./helpers/load-weights-child.ts', import.meta.url));
type Kind = 'dvae' | 'transformer' | 'clip';
interface Outcome {
  i: number;
  ms: number;
  rssGrowthMB: number;
  liveBytes: number;
  loaded?: boolean;
  name?: string;
  code?: string;
  message?: string;
}

/** A copy of `src` with its config metadata replaced by `edit(config)` (a string is used as is). */
async function withConfig(src: string, dst: string, edit: (config: Record<string, unknown>) => unknown): Promise<string> {
  const { tensors, metadata } = readSafetensors(src);
  const edited = edit(JSON.parse(metadata.config!) as Record<string, unknown>);
  await writeSafetensors(dst, tensors, { ...metadata, config: typeof edited === 'string' ? edited : JSON.stringify(edited) });
  return dst;
}

/** The outcome of loading each case, in order. */
function loadInChild(cases: Array<{ kind: Kind; path: string }>): Outcome[] {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(cases)], { encoding: 'utf8', timeout: 60_000 });
  const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outcome & { start?: number });
  const done = lines.filter((l) => l.start === undefined);
  if (done.length !== cases.length) {
    const stuck = lines.filter((l) => l.start !== undefined && !done.some((d) => d.i === l.start)).map((l) => cases[l.start!]!.path);
    throw new Error(`the loader child ${r.error ? `timed out (${r.error.message})` : `exited with ${r.status} ${r.signal ?? ''}`} while loading ${stuck.join(', ')}\n${r.stderr}`);
  }
  return done.sort((a, b) => a.i - b.i);
}

test('configs edited in the metadata are refused by their bounds or by the file\'s tensors, fast and without allocating', async (t) => {
  const dir = tempDir('dalle-hostile-weights-');
  using dvae = Dvae.create({ imageSize: 8, nHid: 8, groupCount: 2, blocksPerGroup: 1, vocabSize: 16, nInit: 12 }, { seed: 1 });
  using transformer = DalleTransformer.create({ layers: 2, width: 16, heads: 2, textLen: 4, textVocab: 32, imageVocab: 16, grid: 2 }, { seed: 2 });
  using clip = Clip.create({ preset: 'shapes32-conv', textLayers: 1, textWidth: 16, textHeads: 1, imageWidth: 8, imageFeatures: 16, embedDim: 8 }, { seed: 3 });
  const good = { dvae: join(dir, 'dvae.safetensors'), transformer: join(dir, 'transformer.safetensors'), clip: join(dir, 'clip.safetensors') };
  await saveDvae(dvae, good.dvae);
  await saveTransformer(transformer, good.transformer);
  await saveClip(clip, good.clip);

  const cases: Array<{ kind: Kind; path: string; expect: RegExp }> = [];
  const add = async (kind: Kind, name: string, edit: (c: Record<string, unknown>) => unknown, expect: RegExp): Promise<void> => {
    cases.push({ kind, path: await withConfig(good[kind], join(dir, `${name}.safetensors`), edit), expect });
  };
  // The defects as found: each hung or grew without bound.
  await add('dvae', 'dvae-blocks-65536', (c) => ({ ...c, blocksPerGroup: 65536 }), /blocksPerGroup is 65536, above the limit of 64/);
  await add('transformer', 'transformer-layers-1e9', (c) => ({ ...c, layers: 1e9 }), /layers is 1000000000, above the limit of 1024/);
  await add('clip', 'clip-text-layers-1e9', (c) => ({ ...c, textLayers: 1e9 }), /textLayers is 1000000000, above the limit/);
  await add('clip', 'clip-text-layers-65536', (c) => ({ ...c, textLayers: 65536 }), /textLayers is 65536, above the limit/);
  // In bounds, but not what the file holds: refused by the tensor table before the model exists.
  await add('dvae', 'dvae-blocks-64', (c) => ({ ...c, blocksPerGroup: DVAE_LIMITS.blocksPerGroup }), /missing encoder\.blocks\.group_1\.block_2\..* \(the file holds \d+ tensors, its config needs \d+\)/);
  await add('transformer', 'transformer-layers-1024', (c) => ({ ...c, layers: TRANSFORMER_LIMITS.layers, width: 4096, heads: 32 }), /blocks\.0\.ln1\.w is \[16\], expected \[4096\]|embed\.tokens is/);
  await add('clip', 'clip-text-layers-1000', (c) => ({ ...c, textLayers: 1000 }), /missing text\.blocks\.1\./);
  // Fields of the wrong type or a config that is not an object.
  await add('transformer', 'transformer-width-string', (c) => ({ ...c, width: '16' }), /width must be a positive integer, got "16"/);
  await add('dvae', 'dvae-config-array', () => '[1,2]', /config metadata is not a JSON object/);
  await add('clip', 'clip-config-null', () => 'null', /config metadata is not a JSON object/);
  // One kind of file where another is expected says what it is.
  cases.push({ kind: 'dvae', path: good.clip, expect: /clip\.safetensors is a CLIP file \(dalle-engine\/clip@1\), not a dVAE/ });
  cases.push({ kind: 'transformer', path: good.dvae, expect: /dvae\.safetensors is a dVAE file \(dalle-engine\/dvae@1\), not a transformer/ });
  cases.push({ kind: 'clip', path: good.transformer, expect: /is a transformer file \(dalle-engine\/transformer@1\), not a CLIP/ });

  const kinds = ['dvae', 'transformer', 'clip'] as const;
  const outcomes = loadInChild([...cases, ...kinds.map((kind) => ({ kind, path: good[kind] }))]);
  for (const [i, c] of cases.entries()) {
    const o = outcomes[i]!;
    t.is(o.name, 'DalleError', `${c.path}: ${o.message}`);
    t.regex(o.message ?? '', c.expect, c.path);
    t.true(o.ms < 2000, `${c.path} took ${o.ms.toFixed(0)} ms`);
    t.true(o.rssGrowthMB < 64, `${c.path} grew the process by ${o.rssGrowthMB.toFixed(0)} MB`);
    t.is(o.liveBytes, 0, `${c.path} left tensors allocated`);
  }
  for (const [j, kind] of kinds.entries()) {
    const o = outcomes[cases.length + j]!;
    t.true(o.loaded, `${kind}: ${o.message}`);
  }
});
