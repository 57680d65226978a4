/**
 * GPT-2's pre-tokenizer, with exactly the meaning gpt-3-encoder (and HF's ByteLevel with use_regex) give it.
 * Merges never cross piece boundaries, so this split decides which token sequences can exist at all; changing it
 * breaks compatibility with every vocabulary trained under it.
 *
 * The regex is the specification; pieceEnd() is a hand-written scanner with the same result, because running the
 * regex was the largest cost of encode. The tests check the two against each other on fuzzed text.
 */
export const PRETOKENIZE_SOURCE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export function pretokenizeRegex(): RegExp {
  return new RegExp(PRETOKENIZE_SOURCE, 'gu');
}

const OTHER = 0, LETTER = 1, NUMBER = 2, SPACE = 3;

function classifySlow(ch: string): number {
  return /\p{L}/u.test(ch) ? LETTER : /\p{N}/u.test(ch) ? NUMBER : /\s/u.test(ch) ? SPACE : OTHER;
}

// Classes of every BMP code unit, from the same regex classes the specification uses, so the scanner follows the
// engine's Unicode version rather than a table of our own. Surrogates stay OTHER here and are resolved per pair.
const BMP = new Uint8Array(65536);
for (let c = 0; c < 65536; c++) if (c < 0xd800 || c > 0xdfff) BMP[c] = classifySlow(String.fromCharCode(c));
const ASTRAL = new Map<number, number>();

/** Class of the code point at i, and its length in code units via `width`. */
let width = 1;
function classAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) {
    width = 1;
    return BMP[c]!;
  }
  const d = s.charCodeAt(i + 1); // NaN past the end, which fails the test below
  if (!(d >= 0xdc00 && d <= 0xdfff)) {
    width = 1; // a lone surrogate is a code point of category Cs: OTHER, as under the regex's u flag
    return OTHER;
  }
  width = 2;
  const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
  let k = ASTRAL.get(cp);
  if (k === undefined) ASTRAL.set(cp, (k = classifySlow(String.fromCodePoint(cp))));
  return k;
}

/** End of the run of code points of class k starting at i. */
function runEnd(s: string, i: number, k: number): number {
  while (i < s.length) {
    if (classAt(s, i) !== k) return i;
    i += width;
  }
  return i;
}

/** End (exclusive) of the piece that starts at i < s.length. */
export function pieceEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x27) {
    // 's|'t|'re|'ve|'m|'ll|'d — case-sensitive, as in GPT-2.
    const a = s.charCodeAt(i + 1);
    if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return i + 2;
    const b = s.charCodeAt(i + 2);
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return i + 3;
  }
  let k = classAt(s, i);
  if (c === 0x20 && i + 1 < s.length) {
    const next = classAt(s, i + 1);
    if (next !== SPACE) return runEnd(s, i + 1, next); // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
    k = SPACE;
  }
  if (k !== SPACE) return runEnd(s, i, k);
  // \s+(?!\S) leaves the last space of a run for the word after it; \s+ takes a lone one.
  const end = runEnd(s, i, SPACE);
  return end === s.length || end - 1 === i ? end : end - 1;
}

export function pretokenize(text: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = pieceEnd(text, i);
    pieces.push(text.slice(i, j));
    i = j;
  }
  return pieces;
}
