/**
 * The fixed 5×7 pixel font for sign text (A–Z), after the classic HD44780 character ROM so that the letters look
 * familiar; every pair of glyphs differs in several pixels, which template matching relies on.
 */

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

const ROWS: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '####. #...# #...# #...# #...# #...# ####.',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
};

export const LETTERS = Object.keys(ROWS).join('');

/** Glyph bitmaps, row-major 5×7, 1 = ink. */
export const GLYPHS: ReadonlyMap<string, Uint8Array> = new Map(
  Object.entries(ROWS).map(([ch, rows]) => [ch, Uint8Array.from(rows.replaceAll(' ', ''), (c) => (c === '#' ? 1 : 0))]),
);

/** Text extent in pixels at a given scale: letters 5·scale wide with scale px between them, 7·scale tall. */
export function textExtent(letters: number, scale: number): { width: number; height: number } {
  return { width: (letters * (GLYPH_WIDTH + 1) - 1) * scale, height: GLYPH_HEIGHT * scale };
}

/** The letter whose glyph is nearest (Hamming distance) to `bits`. */
export function nearestLetter(bits: Uint8Array): string {
  let best = '';
  let bestDist = Infinity;
  for (const [ch, glyph] of GLYPHS) {
    let dist = 0;
    for (let i = 0; i < glyph.length; i++) dist += glyph[i] === bits[i] ? 0 : 1;
    if (dist < bestDist) [best, bestDist] = [ch, dist];
  }
  return best;
}
