/**
 * Encode throughput (MB/s of UTF-8 input) of our BPE against gpt-3-encoder and @huggingface/tokenizers on the same
 * ~2 MB of seeded, varied captions, in one run. Before timing it checks that all three give identical ids for every
 * caption with the GPT-2 vocabulary (HF gets it through a tokenizer.json that we write), so the speeds compare the
 * same work. Our caption vocabulary (trained here on the same captions) is timed too; it has no counterpart.
 *
 *   node --import tsx benchmarks/tokenizer/encode.ts [--reps N] [--mb 2]
 *
 * Unit of work: one encode() call per caption, which is how captions reach the model. All three tokenizers cache
 * per pre-token piece; a warm-up pass fills every cache first, so the figures are steady-state. gpt-3-encoder is
 * not timed on the joined text because it builds its output with Array.concat per piece (quadratic in length).
 * @huggingface/tokenizers 0.2.0 has no batch API; its per-caption encode() is also compared with one encode() of the
 * whole text joined by '\n' (fewer calls, same pieces), and the faster of the two is its honest best.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { encode as gpt3Encode } from 'gpt-3-encoder';

import { fromHfJson, loadGpt2, toHfJson } from '../../lib/tokenizer/formats.js';
import { trainBpe } from '../../lib/tokenizer/train.js';
import { mulberry32 as rng } from '../../lib/rng.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg('--reps', 7);
const TARGET_BYTES = arg('--mb', 2) * 1e6;


const WORDS = {
  det: ['a', 'an', 'the', 'two', 'three', 'several', 'A', 'The'],
  adj: ['red', 'blue', 'small', 'giant', 'fluffy', 'wooden', 'glass', 'neon', 'vintage', 'translucent', 'striped',
    'Minimalist', 'low-poly', 'hand-drawn', 'golden', 'rusty', 'pastel', 'isometric'],
  noun: ['cube', 'avocado', 'armchair', 'penguin', 'teapot', 'skyscraper', 'robot', 'cat', "dog's", 'snail',
    'harp', 'lighthouse', 'bicycle', 'Tokyo', 'MOUNTAIN', 'pizza', 'kangaroo', 'violin', 'capybara'],
  rel: ['on top of', 'next to', 'made of', 'in the shape of', 'inside', 'under', 'riding', "that's holding",
    'in the style of', 'reflected in'],
  style: ['an oil painting', 'a photograph', 'pixel art', 'a 3D render', 'a watercolor', 'a pencil sketch', 'ukiyo-e'],
  extra: ['🍕', '🐱', '✨', 'café', 'naïve', 'über', 'Привет', '東京', 'мир', 'نور', '1920s', '4K', '35mm', '2,048',
    '(circa 1890)', '"hello"', '#42', '—', '...', '!!', ':)', '100%', 'f/1.8'],
};

const SYLLABLES = ['ka', 'lo', 'mi', 'tren', 'qua', 'zor', 'pel', 'vish', 'ou', 'dra', 'nix', 'bel', 'sto', 'ru'];

function captions(seed: number, targetBytes: number): string[] {
  const r = rng(seed);
  const pick = (xs: readonly string[]): string => xs[Math.floor(r() * xs.length)]!;
  // Made-up names keep the stream of distinct pieces open-ended, so caches cannot hold the whole corpus.
  const name = (): string => Array.from({ length: 2 + Math.floor(r() * 3) }, () => pick(SYLLABLES)).join('');
  const out: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    let s = `${pick(WORDS.det)} ${pick(WORDS.adj)} ${pick(WORDS.noun)} ${pick(WORDS.rel)} ${pick(WORDS.det)} ${pick(WORDS.adj)} ${pick(WORDS.noun)}`;
    if (r() < 0.5) s += `, ${pick(WORDS.style)}`;
    if (r() < 0.4) s += ` ${pick(WORDS.extra)}`;
    if (r() < 0.2) s += `. ${pick(WORDS.extra)} ${pick(WORDS.adj)} ${pick(WORDS.noun)}`;
    if (r() < 0.1) s += `  ${pick(WORDS.extra)}\t${Math.floor(r() * 1e6)}`;
    if (r() < 0.3) s += ` named ${r() < 0.5 ? name() : name().toUpperCase()}`;
    out.push(s);
    bytes += Buffer.byteLength(s) + 1;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Median seconds over REPS timed passes, after one untimed pass that warms JIT and caches. */
function time(fn: () => unknown): number {
  fn();
  const secs: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(secs);
}

const texts = captions(2024, TARGET_BYTES);
const joined = texts.join('\n');
const mb = Buffer.byteLength(joined) / 1e6;

const gpt3Dir = dirname(createRequire(import.meta.url).resolve('gpt-3-encoder'));
const ours = loadGpt2(join(gpt3Dir, 'encoder.json'), join(gpt3Dir, 'vocab.bpe'));
const hfJson = toHfJson(ours);
const hf = new HfTokenizer(JSON.parse(hfJson) as object, {});
fromHfJson(hfJson, 'gpt2 tokenizer.json'); // the file HF reads is one we also accept
const hfEncode = (s: string): number[] => hf.encode(s, { add_special_tokens: false }).ids;

// Identical output first: a fast wrong tokenizer is not a result.
let mismatches = 0;
for (const s of texts) {
  const a = Array.from(ours.encode(s));
  const b = gpt3Encode(s);
  const c = hfEncode(s);
  if (a.length !== b.length || a.length !== c.length || a.some((x, i) => x !== b[i] || x !== c[i])) mismatches++;
}
const wholeOurs = ours.encode(joined);
const wholeHf = hfEncode(joined);
if (mismatches > 0 || wholeOurs.length !== wholeHf.length || wholeHf.some((x, i) => x !== wholeOurs[i])) {
  console.error(`ids differ: ${mismatches} of ${texts.length} captions (or the joined text); not timing`);
  process.exit(1);
}

const t0 = performance.now();
const trained = trainBpe(texts, { vocabSize: 16384 });
const trainSecs = (performance.now() - t0) / 1000;

const rows: Array<{ name: string; path: string; mbPerS: number }> = [];
const run = (name: string, path: string, fn: () => unknown): void => {
  rows.push({ name, path, mbPerS: mb / time(fn) });
};
run('ours (GPT-2 vocab)', 'encode() per caption', () => { for (const s of texts) ours.encode(s); });
run('ours (GPT-2 vocab)', 'encode() of joined text', () => ours.encode(joined));
run(`ours (caption vocab ${trained.vocabSize})`, 'encode() per caption', () => { for (const s of texts) trained.encode(s); });
run('gpt-3-encoder 1.1.4', 'encode() per caption', () => { for (const s of texts) gpt3Encode(s); });
run('@huggingface/tokenizers 0.2.0', 'encode() per caption', () => { for (const s of texts) hfEncode(s); });
run('@huggingface/tokenizers 0.2.0', 'encode() of joined text', () => hfEncode(joined));

const best = (prefix: string): number => Math.max(...rows.filter((r) => r.name.startsWith(prefix)).map((r) => r.mbPerS));
const ourBest = rows[0]!.mbPerS; // per caption, the like-for-like row
const rivalBest = Math.max(best('gpt-3-encoder'), best('@huggingface'));

console.log(`${texts.length} captions, ${mb.toFixed(2)} MB UTF-8, median of ${REPS}; ids identical across all three`);
console.log(`caption vocab trained on the same captions in ${trainSecs.toFixed(2)} s\n`);
console.log(`${'tokenizer'.padEnd(34)} ${'path'.padEnd(26)} ${'MB/s'.padStart(8)}`);
for (const r of rows) console.log(`${r.name.padEnd(34)} ${r.path.padEnd(26)} ${r.mbPerS.toFixed(2).padStart(8)}`);
console.log(`\nours per caption / best rival path: ${(ourBest / rivalBest).toFixed(2)}x`);

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'tokenizer.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model,
    captions: texts.length,
    megabytes: mb,
    reps: REPS,
    trainSeconds: trainSecs,
    rows,
    oursOverBestRival: ourBest / rivalBest,
  }, null, 2)}\n`,
);
