import test, { type ExecutionContext } from 'ava';

import { DalleError } from '../lib/errors.js';
import { BpeTokenizer, type BpeModel } from '../lib/tokenizer/bpe.js';
import { byteToChar, charToByte, fromByteLevel, toByteLevel } from '../lib/tokenizer/bytes.js';
import { normalizeCaption } from '../lib/tokenizer/normalize.js';
import { pretokenize, pretokenizeRegex } from '../lib/tokenizer/pretokenize.js';
import { trainBpe } from '../lib/tokenizer/train.js';
import { mulberry32 as rng } from '../lib/rng.js';

// ---- seeded data --------------------------------------------------------------------------------------------------

const picker = (r: () => number) => <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// Hard cases for a byte-level tokenizer: multi-code-point emoji (ZWJ families, skin tones, flags, keycaps), control
// characters, combining marks that must not be composed, letters whose lower-case changes length ('İ') or depends
// on context (final sigma), CJK/Indic scripts, and every kind of Unicode whitespace.
const FRAGMENTS = [
  'A', 'Cat', 'ON', 'the', "it's", "WE'LL", 'avocado', 'armchair', '3.14', '1,000', '٣٤٥', '½', 'x²', '!!', '...', '"q"',
  '(p)', '#', '$', '—', '👩‍👩‍👧‍👦', '👨🏿‍🚀', '👍🏽', '🏳️‍🌈', '🇫🇷', '1️⃣', '😀', '🍕', '\u0000', '\u0001', '\u0007', '\u001b[31m',
  '\u007f', '\u0085', '\u200b', '\u200d', 'e\u0301', 'n\u0303o\u0308', 'A\u030A', '\u0301', 'İstanbul', 'ΟΔΟΣ', 'ẞ',
  'ǅ', 'ﬁ', '東京タワー', '한국어', 'नमस्ते', 'مرحبا', 'Привет', '𝔘𝔫𝔦', '\uFFFD', '\uFEFF',
];
const WHITESPACE = [' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u2028', '\u2003', ' \t\n '];

function fuzz(seed: number, count: number): string[] {
  const r = rng(seed);
  const pick = picker(r);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = r() < 0.3 ? pick(WHITESPACE) : '';
    const n = Math.floor(r() * 12);
    for (let j = 0; j < n; j++) {
      // Random code points too, astral ones included, so coverage is not limited to the list above.
      s += r() < 0.2 ? String.fromCodePoint(Math.floor(r() * 0x2ffff)).replace(/[\uD800-\uDFFF]/g, 'x') : pick(FRAGMENTS);
      if (r() < 0.6) s += pick(WHITESPACE);
    }
    out.push(s);
  }
  return out;
}

// Synthetic captions: a few hundred common made-up words drawn Zipf-like (a few words dominate, as in real
// captions), plus rarer names and numbers, so a 16,384-token vocabulary has enough material to learn from.
const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'st', 'tr', 'ch', 'sh', 'pl', 'gr', ''];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou', 'ee', 'y'];
const CODAS = ['', '', '', 'n', 'r', 's', 't', 'l', 'ng', 'ck', 'm'];

function lexicon(seed: number, count: number, minSyllables: number, maxSyllables: number): string[] {
  const r = rng(seed);
  const pick = picker(r);
  const out = new Set<string>();
  while (out.size < count) {
    let w = '';
    for (let n = minSyllables + Math.floor(r() * (maxSyllables - minSyllables + 1)); n > 0; n--) w += pick(ONSETS) + pick(VOWELS) + pick(CODAS);
    out.add(w);
  }
  return [...out];
}
const zipf = (r: () => number, n: number) => Math.min(n - 1, Math.floor(Math.exp(r() * Math.log(n + 1))) - 1);
const COMMON = lexicon(1, 400, 1, 3);
const NAMES = lexicon(2, 60_000, 2, 4);
const OPENERS = ['A', 'The', 'a photo of', 'An illustration of', 'a painting of the'];

function captions(seed: number, count: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let c = 0; c < count; c++) {
    const parts = [picker(r)(OPENERS)];
    for (let n = 4 + Math.floor(r() * 10); n > 0; n--) {
      const roll = r();
      parts.push(roll < 0.12 ? NAMES[zipf(r, NAMES.length)]! : roll < 0.15 ? String(Math.floor(r() * 2000)) : COMMON[zipf(r, COMMON.length)]!);
    }
    out.push(`${parts.join(' ')}${r() < 0.3 ? '.' : ''}`);
  }
  return out;
}

// ---- helpers ------------------------------------------------------------------------------------------------------

function throwsInvalid(t: ExecutionContext, fn: () => unknown, what: string, message?: RegExp): void {
  const err = t.throws(fn, undefined, what);
  t.true(err instanceof DalleError, `${what}: ${String(err)} is not a DalleError`);
  t.is((err as DalleError).code, 'E_INVALID_ARGUMENT', what);
  if (message) t.regex(err!.message, message, what);
}

/** Unpaired surrogates cannot be UTF-8 encoded; every encoder, ours included, writes U+FFFD for them. */
const wellFormed = (s: string) => s.replace(/\p{Cs}/gu, '\uFFFD');

/**
 * Straightforward reference BPE (rescan for the lowest-rank, leftmost pair after every merge), to check the heap
 * and linked-list encoder against something obviously right.
 */
function referenceEncode(tok: BpeTokenizer, text: string): number[] {
  const { vocab, merges, normalizer } = tok.model;
  const ids = new Map(vocab.map((v, i) => [v, i]));
  const ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
  const out: number[] = [];
  for (const piece of pretokenize(normalizer === 'caption' ? normalizeCaption(text) : text)) {
    const syms = [...toByteLevel(piece)];
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = ranks.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
      }
      if (best < 0) break;
      syms.splice(best, 2, syms[best]! + syms[best + 1]!);
    }
    for (const s of syms) out.push(ids.get(s)!);
  }
  return out;
}

const bytesOnly = new BpeTokenizer({ vocab: [...byteToChar], merges: [], normalizer: 'caption' });
const small = trainBpe([...captions(11, 3000), ...fuzz(12, 500)], { vocabSize: 2000 });

// ---- building blocks ----------------------------------------------------------------------------------------------

test('byte table is GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest shift to U+0100 in order', (t) => {
  t.is(byteToChar.length, 256);
  t.is(new Set(byteToChar).size, 256);
  t.is(byteToChar[0x41], 'A');
  t.is(byteToChar[0xe9], 'é');
  t.is(byteToChar[0], '\u0100');
  t.is(byteToChar[0x20], 'Ġ'); // the familiar GPT-2 space
  t.is(byteToChar[0x0a], 'Ċ');
  t.is(byteToChar[0xad], 'Ń'); // soft hyphen is the last of the 68 shifted bytes
  for (let b = 0; b < 256; b++) t.is(charToByte.get(byteToChar[b]!), b);
  t.deepEqual(Array.from(fromByteLevel(toByteLevel('é😀'))), Array.from(new TextEncoder().encode('é😀')));
  throwsInvalid(t, () => fromByteLevel('a\u4e00'), 'CJK char is no byte symbol', /U\+4E00/);
});

test('normalizeCaption lower-cases, folds every Unicode whitespace run, trims, and leaves combining marks alone', (t) => {
  t.is(normalizeCaption('  A\tRED\u00a0\u3000Cube\r\n\n'), 'a red cube');
  t.is(normalizeCaption('Cafe\u0301'), 'cafe\u0301'); // not composed to é
  t.is(normalizeCaption('ΟΔΟΣ'), 'οδος'.slice(0, 3) + 'ς'); // final sigma, as toLowerCase does it
  t.is(normalizeCaption('\u2028\ufeff'), '');
  t.is(normalizeCaption('\u0000x\u200b'), '\u0000x\u200b'); // controls and zero-width chars are not whitespace
});

test('pre-tokenizer pieces are GPT-2 pieces and always concatenate back to the input', (t) => {
  t.deepEqual(pretokenize("I'll pay 1234 dollars!!  ok"), ['I', "'ll", ' pay', ' 1234', ' dollars', '!!', ' ', ' ok']);
  for (const s of fuzz(3, 300)) t.is(pretokenize(s).join(''), s);
});

test('the hand-written pre-tokenizer splits exactly like the GPT-2 regex', (t) => {
  // Apostrophes, space runs before letters/numbers/symbols, lone surrogates and astral letters/digits are where a
  // scanner could drift from the regex.
  const tricky = ["'s'S'RE're'vel'l'll'd'x '", ' \t  a  1  !  \n', 'x\uD800y \uDC00 \uD835\uDC00\uD835\uDFCE 𝟎x', ' ', '  ', 'a ', '\u3000a b'];
  const r = rng(4);
  const alphabet = ["'", 's', 't', 'r', 'e', 'l', 'd', ' ', ' ', '\t', '\n', '1', '!', '\u00a0', 'é', '\u0301', '\uD83D', '\uDE00', '٣', 'Ⅳ'];
  const random = Array.from({ length: 2000 }, () => Array.from({ length: Math.floor(r() * 16) }, () => picker(r)(alphabet)).join(''));
  for (const s of [...tricky, ...random, ...fuzz(6, 1000)]) t.deepEqual(pretokenize(s), s.match(pretokenizeRegex()) ?? [], JSON.stringify(s));
});

// ---- encode / decode ----------------------------------------------------------------------------------------------

test('decode(encode(x)) == normalizeCaption(x) on fuzzed text: emoji, controls, combining marks, CJK', (t) => {
  const texts = fuzz(1, 2000);
  for (const tok of [bytesOnly, small]) {
    for (const x of texts) t.is(tok.decode(tok.encode(x)), normalizeCaption(x), JSON.stringify(x));
  }
  t.true(texts.some((x) => x.includes('\u200d') && x.includes('\u0301') && x.includes('\u0007')));
});

test('encode matches a reference BPE implementation on captions, fuzz, and long pieces', (t) => {
  // Pieces of every length up to ~300 bytes: short ones take the rescan path, long ones the heap path.
  const r = rng(23);
  const long = Array.from({ length: 150 }, (_, i) => {
    let w = '';
    while (w.length < i * 2) w += picker(r)(COMMON);
    return `${w} ${w.toUpperCase()}😀${w}`;
  });
  for (const x of [...captions(21, 200), ...fuzz(22, 300), ...long]) {
    t.deepEqual(Array.from(small.encode(x)), referenceEncode(small, x), JSON.stringify(x));
  }
});

test('lone surrogates are not text: they encode as U+FFFD, the rest of the string is kept', (t) => {
  t.is(small.decode(small.encode('a\uD800b \uDC00 c\uD83D')), 'a\uFFFDb \uFFFD c\uFFFD');
  for (const x of fuzz(5, 300).map((s, i) => s + (i % 2 ? '\uD83D' : '\uDE00x'))) {
    t.is(small.decode(small.encode(x)), wellFormed(normalizeCaption(x)));
  }
});

test('empty and whitespace-only input encode to no tokens', (t) => {
  t.is(small.encode('').length, 0);
  t.is(small.encode(' \n\t\u3000 ').length, 0);
  t.is(small.decode([]), '');
});

test('100 kB single inputs round-trip, including one 100 kB piece with no spaces', (t) => {
  const text = captions(31, 2000).join(' ').slice(0, 100_000);
  t.is(text.length, 100_000);
  t.is(small.decode(small.encode(text)), normalizeCaption(text));
  const r = rng(32);
  let run = '';
  while (run.length < 100_000) run += COMMON[Math.floor(r() * COMMON.length)]!;
  const started = performance.now();
  const ids = small.encode(run);
  const ms = performance.now() - started;
  t.is(small.decode(ids), run);
  t.true(ids.length < run.length / 2, `merges applied inside the long piece (${ids.length} tokens)`);
  t.true(ms < 2000, `100 kB piece took ${ms.toFixed(0)} ms; the merge loop must not be quadratic`);
  const emoji = '👩‍👩‍👧‍👦'.repeat(10_000);
  t.is(small.decode(small.encode(emoji)), emoji);
});

test('decode turns a cut multi-byte character into U+FFFD and rejects ids outside the vocabulary', (t) => {
  const ids = bytesOnly.encode('😀');
  t.is(ids.length, 4);
  t.is(bytesOnly.decode(ids.subarray(0, 2)), '\uFFFD');
  const raw = new BpeTokenizer({ ...bytesOnly.model, normalizer: 'none' });
  t.is(raw.decode(raw.encode('\uFEFFx')), '\uFEFFx', 'a leading U+FEFF is text, not a BOM to drop');
  throwsInvalid(t, () => small.decode([0, small.vocabSize]), 'id == vocabSize', /ids\[1\]/);
  throwsInvalid(t, () => small.decode([1.5]), 'fractional id');
  throwsInvalid(t, () => small.decode([-1]), 'negative id');
});

test('encode rejects non-strings and bad dropout or seed', (t) => {
  throwsInvalid(t, () => small.encode(42 as unknown as string), 'number');
  throwsInvalid(t, () => small.encode('x', { dropout: 1.5 }), 'dropout > 1');
  throwsInvalid(t, () => small.encode('x', { dropout: Number.NaN }), 'NaN dropout');
  throwsInvalid(t, () => small.encode('x', { dropout: 0.1, seed: 0.5 }), 'fractional seed');
  // Options that are not an object threw a TypeError (found by fuzzing).
  throwsInvalid(t, () => small.encode('x', null as never), 'null options', /options must be an object/);
  throwsInvalid(t, () => small.encode('x', 3 as never), 'number options');
});

test('encodeBatch encodes each text, and is reproducible under dropout', (t) => {
  const texts = captions(41, 20);
  t.deepEqual(small.encodeBatch(texts), texts.map((x) => small.encode(x)));
  t.deepEqual(small.encodeBatch(texts, { dropout: 0.1, seed: 3 }), small.encodeBatch(texts, { dropout: 0.1, seed: 3 }));
});

// ---- BPE-dropout --------------------------------------------------------------------------------------------------

test('BPE-dropout: same seed same ids, other seeds other ids, p=0 is no dropout, p=1 is bytes only', (t) => {
  const text = captions(51, 40).join(' ');
  const plain = small.encode(text);
  const a = small.encode(text, { dropout: 0.1, seed: 7 });
  t.deepEqual(a, small.encode(text, { dropout: 0.1, seed: 7 }));
  t.notDeepEqual(a, small.encode(text, { dropout: 0.1, seed: 8 }));
  t.notDeepEqual(a, plain);
  t.true(a.length > plain.length, 'skipped merges leave more tokens');
  t.is(small.decode(a), normalizeCaption(text));
  t.deepEqual(small.encode(text, { dropout: 0, seed: 9 }), plain);
  const bytes = small.encode(text, { dropout: 1, seed: 9 });
  t.deepEqual(bytes, bytesOnly.encode(text));
  t.true(Array.from(bytes).every((id) => id < 256));
  // Dropout must not poison the cache that plain encodes use.
  t.deepEqual(small.encode(text), plain);
});

test('fit() truncates to the text length and reports it; short inputs are not padded by the tokenizer', (t) => {
  const ids = small.encode(captions(61, 30).join(' '));
  t.true(ids.length > 256);
  const cut = small.fit(ids, 256);
  t.true(cut.truncated);
  t.is(cut.length, 256);
  t.deepEqual(cut.ids, ids.subarray(0, 256));
  const short = small.fit(ids.subarray(0, 10), 256);
  t.false(short.truncated);
  t.is(short.length, 10);
  t.is(short.ids.length, 10);
  t.false(small.fit(ids.subarray(0, 256), 256).truncated);
  throwsInvalid(t, () => small.fit(ids, 0), 'textLen 0');
  throwsInvalid(t, () => small.fit([1, 2] as unknown as Int32Array, 5), 'plain array');
});

// ---- model validation ---------------------------------------------------------------------------------------------

test('the constructor rejects inconsistent models with a message naming the problem', (t) => {
  const base = (): BpeModel => ({ vocab: [...byteToChar, 'ab'], merges: [['a', 'b']], normalizer: 'caption' });
  t.notThrows(() => new BpeTokenizer(base()));
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), vocab: byteToChar.slice(1) }), 'missing byte', /byte 0/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), merges: [['a', 'q']], vocab: [...byteToChar] }), 'unknown merge result', /"aq"/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), vocab: [...byteToChar, 'ab', 'ab'] }), 'duplicate token', /ids 256 and 257/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), vocab: [...byteToChar, 'ab', 'a b'] }), 'space is not a byte symbol', /token 257/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), vocab: [...byteToChar, 'ab', ''] }), 'empty token');
  const sparse = [...byteToChar, 'ab'];
  sparse.length = 259;
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), vocab: sparse }), 'hole in the vocabulary', /vocab\[257\]/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), normalizer: 'nfc' as 'none' }), 'normalizer', /normalizer/);
  throwsInvalid(t, () => new BpeTokenizer({ ...base(), merges: [['a']] as unknown as Array<[string, string]> }), 'one-sided merge', /merge 0/);
});

test('model is a copy: mutating it does not change the tokenizer', (t) => {
  const m = small.model;
  const before = small.encode('a photo of the avocado');
  m.merges.length = 0;
  m.vocab[300] = 'x';
  t.deepEqual(small.encode('a photo of the avocado'), before);
  t.is(small.model.merges.length, small.vocabSize - 256);
});

// ---- training -----------------------------------------------------------------------------------------------------

test('training is deterministic and validates its options', (t) => {
  const corpus = captions(71, 500);
  t.deepEqual(trainBpe(corpus, { vocabSize: 600 }).model, trainBpe(corpus, { vocabSize: 600 }).model);
  t.is(trainBpe(['ab'], { vocabSize: 1000 }).vocabSize, 256, 'a pair seen once is below the default minFrequency of 2');
  const once = trainBpe(['ab'], { vocabSize: 1000, minFrequency: 1 });
  t.deepEqual(once.model.merges, [['a', 'b']]);
  t.is(once.encode('ab').length, 1);
  // Overlapping occurrences count separately, as in HF: "aaaa" holds the pair (a, a) three times.
  t.deepEqual(trainBpe(['aaaa'], { vocabSize: 258, minFrequency: 1 }).model.vocab.slice(256), ['aa', 'aaaa']);
  throwsInvalid(t, () => trainBpe(corpus, { vocabSize: 255 }), 'vocab below 256', /vocabSize/);
  throwsInvalid(t, () => trainBpe(corpus, { vocabSize: 1000, minFrequency: 0 }), 'minFrequency 0');
  throwsInvalid(t, () => trainBpe(['ok', 3 as unknown as string], { vocabSize: 300 }), 'non-string caption', /item 1/);
  throwsInvalid(t, () => trainBpe(42 as unknown as string[], { vocabSize: 300 }), 'not iterable');
});

test('trains a 16,384 vocabulary on 100k captions in under a minute, and learns whole words', (t) => {
  const corpus = captions(81, 100_000);
  const started = performance.now();
  const tok = trainBpe(corpus, { vocabSize: 16_384 });
  const seconds = (performance.now() - started) / 1000;
  t.log(`trained ${tok.vocabSize} tokens on ${corpus.length} captions in ${seconds.toFixed(2)} s`);
  t.is(tok.vocabSize, 16_384);
  t.true(seconds < 60, `${seconds.toFixed(1)} s`);
  // Every common word recurs thousands of times, so each should have become one token (with its leading space).
  const whole = COMMON.filter((w) => tok.encode(`x ${w}`).length === 2).length;
  t.true(whole / COMMON.length > 0.95, `${whole} of ${COMMON.length} common words are single tokens`);
  const sample = corpus.slice(0, 1000);
  const bytes = sample.reduce((n, c) => n + normalizeCaption(c).length, 0);
  const tokens = sample.reduce((n, c) => n + tok.encode(c).length, 0);
  t.log(`compression: ${(bytes / tokens).toFixed(2)} bytes per token`);
  t.true(bytes / tokens > 4);
  for (const c of sample.slice(0, 200)) t.is(tok.decode(tok.encode(c)), normalizeCaption(c));
  t.true(sample.every((c) => tok.fit(tok.encode(c), 256).truncated === false));
});
