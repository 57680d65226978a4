/**
 * A small deterministic mutator for the replay's smoke runs (Jazzer.js does the real, coverage-guided fuzzing): the
 * same (seed, input name, index) always gives the same mutant, on every machine, so a failure is reproducible from
 * the numbers it prints. The mutations are the classic ones that break length fields and parsers: bit flips,
 * boundary bytes and integers, inserted, deleted and duplicated ranges, numbers in text, splices of another seed.
 */

/** xoshiro128**: tiny, fast, 32-bit, and seeded explicitly (never Math.random). */
export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 spreads a small seed over the whole state, so seeds 1 and 2 give unrelated streams.
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  u32(): number {
    const result = Math.imul(((Math.imul(this.s1, 5) << 7) | (Math.imul(this.s1, 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = ((this.s3 << 11) | (this.s3 >>> 21)) >>> 0;
    return result;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

/** FNV-1a of text, for turning an input's name into part of a seed. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** The generator of mutant `index` of the input called `name` under run seed `seed`. */
export function mutantRandom(seed: number, name: string, index: number): Random {
  return new Random((hashText(name) ^ Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

const BOUNDARY_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe, 0x20, 0x0a];
const BOUNDARY_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const BOUNDARY_U16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];
/** Written over a run of digits: what JSON, tar's octal fields and pickle's text opcodes choke on. */
const BOUNDARY_NUMBERS = ['0', '-1', '1', '65536', '2147483647', '4294967296', '9007199254740993', '1e308', '-0', '0.5', '077777777777'];
/** Dropped in whole: bytes that start or end structures in the formats under test. */
const TOKENS = ['{', '}', '[', ']', '"', '\\', ',', ':', 'null', '\n', '\r\n', '\u0000', '\u00ff', '\ud83d', 'IHDR', 'IDAT', '\u00ff\u00d8\u00ff', 'PK\u0003\u0004'];

type Mutation = (bytes: Buffer, random: Random, others: readonly Uint8Array[]) => Buffer;

function position(bytes: Buffer, random: Random, room = 1): number {
  return random.below(Math.max(1, bytes.length - room + 1));
}

function rangeLength(bytes: Buffer, random: Random): number {
  // Mostly short ranges, sometimes long ones: length fields care about both.
  const most = Math.max(1, random.below(4) === 0 ? bytes.length : Math.min(bytes.length, 32));
  return 1 + random.below(most);
}

const MUTATIONS: Mutation[] = [
  function flipBit(bytes, random) {
    if (bytes.length === 0) return bytes;
    const out = Buffer.from(bytes);
    out[random.below(out.length)]! ^= 1 << random.below(8);
    return out;
  },
  function setBoundaryByte(bytes, random) {
    if (bytes.length === 0) return Buffer.from([random.pick(BOUNDARY_BYTES)]);
    const out = Buffer.from(bytes);
    out[random.below(out.length)] = random.pick(BOUNDARY_BYTES);
    return out;
  },
  function setRandomByte(bytes, random) {
    if (bytes.length === 0) return bytes;
    const out = Buffer.from(bytes);
    out[random.below(out.length)] = random.below(256);
    return out;
  },
  function setBoundaryInt32(bytes, random) {
    if (bytes.length < 4) return bytes;
    const out = Buffer.from(bytes);
    const at = position(out, random, 4);
    const value = random.pick(BOUNDARY_U32);
    if (random.below(2) === 0) out.writeUInt32LE(value, at);
    else out.writeUInt32BE(value, at);
    return out;
  },
  function setBoundaryInt16(bytes, random) {
    if (bytes.length < 2) return bytes;
    const out = Buffer.from(bytes);
    const at = position(out, random, 2);
    const value = random.pick(BOUNDARY_U16);
    if (random.below(2) === 0) out.writeUInt16LE(value, at);
    else out.writeUInt16BE(value, at);
    return out;
  },
  function insertBytes(bytes, random) {
    const at = random.below(bytes.length + 1);
    const n = 1 + random.below(16);
    const fill = random.below(2) === 0 ? Buffer.alloc(n, random.pick(BOUNDARY_BYTES)) : Buffer.from(Array.from({ length: n }, () => random.below(256)));
    return Buffer.concat([bytes.subarray(0, at), fill, bytes.subarray(at)]);
  },
  function deleteRange(bytes, random) {
    if (bytes.length === 0) return bytes;
    const n = rangeLength(bytes, random);
    const at = position(bytes, random, n);
    return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + n)]);
  },
  function duplicateRange(bytes, random) {
    if (bytes.length === 0) return bytes;
    const n = rangeLength(bytes, random);
    const from = position(bytes, random, n);
    const to = random.below(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, to), bytes.subarray(from, from + n), bytes.subarray(to)]);
  },
  function truncate(bytes, random) {
    return bytes.subarray(0, random.below(bytes.length + 1));
  },
  function replaceNumber(bytes, random) {
    const text = bytes.toString('latin1');
    const runs = [...text.matchAll(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi)];
    if (runs.length === 0) return bytes;
    const run = random.pick(runs);
    const at = run.index;
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(random.pick(BOUNDARY_NUMBERS), 'latin1'), bytes.subarray(at + run[0].length)]);
  },
  function insertToken(bytes, random) {
    const at = random.below(bytes.length + 1);
    const token = random.pick(TOKENS);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(token, random.below(2) === 0 ? 'latin1' : 'utf8'), bytes.subarray(at)]);
  },
  function spliceOther(bytes, random, others) {
    if (others.length === 0) return bytes;
    const other = Buffer.from(random.pick(others));
    if (other.length === 0) return bytes;
    const n = rangeLength(other, random);
    const from = position(other, random, n);
    const at = random.below(bytes.length + 1);
    const replace = random.below(2) === 0 ? Math.min(n, bytes.length - at) : 0;
    return Buffer.concat([bytes.subarray(0, at), other.subarray(from, from + n), bytes.subarray(at + replace)]);
  },
];

/** One to four stacked mutations of `input`; `others` (other seeds of the target) feed the splices. */
export function mutate(input: Uint8Array, random: Random, others: readonly Uint8Array[] = []): Buffer {
  let bytes: Buffer = Buffer.from(input);
  const count = 1 + random.below(4);
  for (let i = 0; i < count; i++) bytes = random.pick(MUTATIONS)(bytes, random, others);
  return bytes;
}
