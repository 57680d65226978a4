/**
 * A JS reference of the engine's counter-based RNG (native/core/rng.h): Philox4x32-10 (Salmon et
 * al., SC'11, as in Random123), the stream mapping (key = seed, counter = word offset / 4) and
 * the f32 uniform, written independently so the tests can check the native kernels against it.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO32 = 4294967296;

/** High 32 bits of the 64-bit product of two uint32, exactly, in doubles. */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 of a 128-bit counter (four uint32) under a 64-bit key (two uint32). */
export function philox4x32(counter: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((x) => x >>> 0) as [number, number, number, number];
  let k0 = key[0]! >>> 0;
  let k1 = key[1]! >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Splits an integer in [0, 2^53) into [low, high] uint32 words. */
function split64(x: number): [number, number] {
  return [x % TWO32, Math.floor(x / TWO32)];
}

/** The uint32 at stream word `offset` under `seed`: word offset%4 of block offset/4. */
export function philoxU32(seed: number, offset: number): number {
  const block = Math.floor(offset / 4);
  return philox4x32([...split64(block), 0, 0], split64(seed))[offset % 4]!;
}

/** `count` consecutive words from `offset`. */
export function philoxWords(seed: number, offset: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  let i = 0;
  while (i < count) {
    const w = offset + i;
    const b = philox4x32([...split64(Math.floor(w / 4)), 0, 0], split64(seed));
    for (let j = w % 4; j < 4 && i < count; j++, i++) out[i] = b[j]!;
  }
  return out;
}

/** u32_to_unit_open in f32 arithmetic: (float(x >> 9) + 0.5f) · 2^-23. */
export function unitOpen(x: number): number {
  return Math.fround(Math.fround((x >>> 9) + 0.5) / 8388608);
}
