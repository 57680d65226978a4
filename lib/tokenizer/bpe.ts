/**
 * Byte-level BPE encoder/decoder. Symbols are integer vocabulary ids throughout; strings appear only at the edges
 * (the input text, and the per-piece cache key), because encode is benchmarked against other tokenizers.
 */
import { DalleError } from '../errors.js';
import { mulberry32 } from '../rng.js';
import { byteToChar, charToByte } from './bytes.js';
import { normalizeCaption } from './normalize.js';
import { pieceEnd } from './pretokenize.js';

export interface BpeModel {
  /** id -> token, spelled in the byte-level alphabet of bytes.ts. */
  vocab: string[];
  /** Merge rules in rank order: lower index = applied first. */
  merges: Array<[string, string]>;
  /** 'caption' applies normalizeCaption before encoding; 'none' leaves text alone (GPT-2 files). */
  normalizer: 'caption' | 'none';
}

export interface EncodeOptions {
  /** BPE-dropout probability in [0, 1]: each merge is skipped with this probability (training-time regulariser). */
  dropout?: number;
  /** Seed of the dropout RNG; the same (text, seed, dropout) always gives the same ids. Default 0. */
  seed?: number;
}

export interface FitResult {
  /** At most textLen ids; the model, not the tokenizer, fills the remaining slots with its per-position pads. */
  ids: Int32Array;
  /** True when tokens were cut off, so callers can warn instead of silently dropping the end of a caption. */
  truncated: boolean;
  length: number;
}

function invalid(message: string): DalleError {
  return new DalleError('E_INVALID_ARGUMENT', message);
}


/**
 * (left id, right id) -> merge rank, open addressing over typed arrays. A Map keyed by left * 2^20 + right would
 * key on non-Smi doubles past 2^31 for GPT-2-sized vocabularies, which V8 hashes far more slowly.
 */
class MergeTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly rank: Int32Array;
  private readonly mask: number;

  constructor(entries: number) {
    let size = 16;
    while (size < entries * 2) size *= 2;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.rank = new Int32Array(size);
    this.mask = size - 1;
  }

  private slot(l: number, r: number): number {
    let h = Math.imul(l ^ Math.imul(r, 0x85ebca6b), 0x9e3779b1);
    h ^= h >>> 15;
    let i = h & this.mask;
    while (this.left[i] !== -1 && (this.left[i] !== l || this.right[i] !== r)) i = (i + 1) & this.mask;
    return i;
  }

  /** Later duplicates overwrite earlier ones, as both gpt-3-encoder and HF do when they build their rank maps. */
  set(l: number, r: number, rank: number): void {
    const i = this.slot(l, r);
    this.left[i] = l;
    this.right[i] = r;
    this.rank[i] = rank;
  }

  get(l: number, r: number): number {
    const i = this.slot(l, r);
    return this.left[i] === -1 ? -1 : this.rank[i]!;
  }
}

const SHORT_PIECE = 48; // bytes; below this the O(n^2) rescan is cheaper than heap upkeep
const RANK_SHIFT = 4294967296; // heap key = rank * 2^32 + position: one float compare orders by rank, then leftmost
const CACHE_LIMIT = 100_000; // pieces; bounded so encoding an endless stream of novel text cannot grow without end
const CACHE_MAX_PIECE = 256; // longer pieces are rare and would make the cache hold whole documents

export class BpeTokenizer {
  readonly vocabSize: number;
  private readonly frozen: BpeModel;
  private readonly byteToId = new Int32Array(256);
  private readonly merges: MergeTable;
  private readonly mergeLeft: Int32Array;
  private readonly mergeRight: Int32Array;
  private readonly mergeResult: Int32Array;
  private readonly tokenBytes: Uint8Array; // all tokens' bytes back to back; tokenStart[id]..tokenStart[id + 1]
  private readonly tokenStart: Int32Array;
  private readonly cache = new Map<string, Int32Array>();
  private readonly utf8 = new TextEncoder();
  // ignoreBOM keeps a leading U+FEFF: it is text the caller gave us, not a byte-order mark to strip.
  private readonly utf8Out = new TextDecoder('utf-8', { ignoreBOM: true });
  // Scratch space reused across calls; encode is not re-entrant, and JS is single-threaded, so that is safe.
  private bytes = new Uint8Array(256);
  private sym = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private heap = new Float64Array(512); // stale entries stay in the heap: up to 2n - 2 keys for n symbols
  private out = new Int32Array(1024);
  private heapSize = 0;
  private readonly skipped: number[] = [];

  constructor(model: BpeModel) {
    if (typeof model !== 'object' || model === null) throw invalid('BPE model must be an object');
    const { vocab, merges, normalizer } = model;
    if (normalizer !== 'caption' && normalizer !== 'none') {
      throw invalid(`BPE model normalizer must be 'caption' or 'none', got ${JSON.stringify(normalizer)}`);
    }
    if (!Array.isArray(vocab)) throw invalid('BPE model vocab must be an array of tokens');
    if (!Array.isArray(merges)) throw invalid('BPE model merges must be an array of [left, right] pairs');

    const ids = new Map<string, number>();
    const starts = new Int32Array(vocab.length + 1);
    const pieces: Uint8Array[] = [];
    // Index loops, not forEach: forEach skips holes in a sparse array, which would leave ids without bytes.
    for (let id = 0; id < vocab.length; id++) {
      const token: unknown = vocab[id];
      if (typeof token !== 'string' || token === '') throw invalid(`vocab[${id}] is not a non-empty string`);
      const seen = ids.get(token);
      if (seen !== undefined) throw invalid(`token ${JSON.stringify(token)} appears at ids ${seen} and ${id}`);
      ids.set(token, id);
      const bytes = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const b = charToByte.get(token[i]!);
        if (b === undefined) {
          throw invalid(`token ${id} (${JSON.stringify(token)}) has a character outside the byte-level alphabet`);
        }
        bytes[i] = b;
      }
      pieces.push(bytes);
      starts[id + 1] = starts[id]! + bytes.length;
    }
    this.tokenStart = starts;
    this.tokenBytes = new Uint8Array(starts[vocab.length]!);
    pieces.forEach((p, id) => this.tokenBytes.set(p, starts[id]!));

    for (let b = 0; b < 256; b++) {
      const id = ids.get(byteToChar[b]!);
      if (id === undefined) throw invalid(`vocabulary lacks the single-byte token for byte ${b}; some text could not be encoded`);
      this.byteToId[b] = id;
    }

    this.merges = new MergeTable(merges.length);
    this.mergeLeft = new Int32Array(merges.length);
    this.mergeRight = new Int32Array(merges.length);
    this.mergeResult = new Int32Array(merges.length);
    for (let rank = 0; rank < merges.length; rank++) {
      const pair: unknown = merges[rank];
      if (!Array.isArray(pair) || pair.length !== 2) throw invalid(`merge ${rank} is not a [left, right] pair`);
      const [a, b] = pair;
      const l = typeof a === 'string' ? ids.get(a) : undefined;
      const r = typeof b === 'string' ? ids.get(b) : undefined;
      const m = l !== undefined && r !== undefined ? ids.get(a + b) : undefined;
      if (l === undefined || r === undefined || m === undefined) {
        const missing = l === undefined ? a : r === undefined ? b : `${a}${b}`;
        throw invalid(`merge ${rank} (${JSON.stringify(`${a} ${b}`)}) needs token ${JSON.stringify(missing)}, which is not in the vocabulary`);
      }
      this.merges.set(l, r, rank);
      this.mergeLeft[rank] = l;
      this.mergeRight[rank] = r;
      this.mergeResult[rank] = m;
    }

    this.vocabSize = vocab.length;
    this.frozen = { vocab: [...vocab], merges: merges.map(([a, b]) => [a, b]), normalizer };
  }

  /** A copy of the model, for the file writers; mutating it does not affect this tokenizer. */
  get model(): BpeModel {
    return { vocab: [...this.frozen.vocab], merges: this.frozen.merges.map(([a, b]) => [a, b]), normalizer: this.frozen.normalizer };
  }

  /**
   * Text -> ids. Lone surrogates are not text: like every UTF-8 encoder, they are encoded as U+FFFD, so decode gives
   * U+FFFD back in their place.
   */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    if (typeof text !== 'string') throw invalid(`encode expects a string, got ${typeof text}`);
    if (typeof opts !== 'object' || opts === null) throw invalid(`encode options must be an object, got ${opts === null ? 'null' : typeof opts}`);
    const dropout = opts.dropout ?? 0;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout <= 1)) throw invalid(`dropout must be in [0, 1], got ${dropout}`);
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed)) throw invalid(`seed must be an integer, got ${seed}`);
    const rng = dropout > 0 ? mulberry32(seed) : null;

    const normalized = this.frozen.normalizer === 'caption' ? normalizeCaption(text) : text;
    let length = 0;
    for (let i = 0; i < normalized.length; ) {
      const end = pieceEnd(normalized, i);
      const piece = normalized.slice(i, end);
      i = end;
      if (rng === null) {
        const hit = this.cache.get(piece);
        if (hit !== undefined) {
          length = this.append(hit, length);
          continue;
        }
      }
      const n = this.pieceToSymbols(piece);
      const count = this.merge(n, dropout, rng);
      length = this.collect(count, length, rng === null && piece.length <= CACHE_MAX_PIECE ? piece : null);
    }
    const ids = this.out.slice(0, length);
    // Do not keep a huge scratch buffer alive after one huge input.
    if (this.out.length > 1 << 20) this.out = new Int32Array(1024);
    return ids;
  }

  encodeBatch(texts: readonly string[], opts: EncodeOptions = {}): Int32Array[] {
    if (!Array.isArray(texts)) throw invalid('encodeBatch expects an array of strings');
    // Each text gets its own seed so a batch is reproducible yet its captions do not share one dropout pattern.
    const seed = opts.seed ?? 0;
    return texts.map((t, i) => this.encode(t, { ...opts, seed: (seed + i) | 0 }));
  }

  /** ids -> text. Sequences that are not valid UTF-8 (e.g. a cut-off emoji) decode to U+FFFD rather than throwing. */
  decode(ids: ArrayLike<number>): string {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw invalid(`decode: ids[${i}] = ${id} is not a token id (vocabulary size ${this.vocabSize})`);
      }
      total += this.tokenStart[id + 1]! - this.tokenStart[id]!;
    }
    const buf = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const start = this.tokenStart[id]!, end = this.tokenStart[id + 1]!;
      buf.set(this.tokenBytes.subarray(start, end), at);
      at += end - start;
    }
    return this.utf8Out.decode(buf);
  }

  /** Cuts ids to the model's text length and says whether it had to. */
  fit(ids: Int32Array, textLen: number): FitResult {
    if (!(ids instanceof Int32Array)) throw invalid('fit expects the Int32Array that encode returns');
    if (!Number.isInteger(textLen) || textLen <= 0) throw invalid(`textLen must be a positive integer, got ${textLen}`);
    const truncated = ids.length > textLen;
    const out = truncated ? ids.slice(0, textLen) : ids.slice();
    return { ids: out, truncated, length: out.length };
  }

  private append(tokens: Int32Array, length: number): number {
    const n = tokens.length;
    if (length + n > this.out.length) this.out = grow(this.out, length + n);
    // Most cached pieces are one or two tokens, where TypedArray.set costs more than the copy itself.
    const out = this.out;
    for (let i = 0; i < n; i++) out[length + i] = tokens[i]!;
    return length + n;
  }

  /** UTF-8 bytes of the piece as initial single-byte symbols; returns the symbol count. */
  private pieceToSymbols(piece: string): number {
    if (piece.length * 3 > this.bytes.length) this.bytes = new Uint8Array(piece.length * 6);
    const n = this.utf8.encodeInto(piece, this.bytes).written;
    if (n > this.sym.length) {
      this.sym = new Int32Array(n * 2);
      this.prev = new Int32Array(n * 2);
      this.next = new Int32Array(n * 2);
      this.heap = new Float64Array(n * 4);
    }
    const { sym, prev, next, bytes, byteToId } = this;
    for (let i = 0; i < n; i++) {
      sym[i] = byteToId[bytes[i]!]!;
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    next[n - 1] = -1;
    return n;
  }

  /**
   * Applies merges lowest rank first, leftmost first among equals (HF's order; GPT-2's pass-per-rank order gives the
   * same result whenever a merged token's merges rank after the merge that made it, which training guarantees).
   * Leaves the result in sym[0..count) and returns count.
   */
  private merge(n: number, dropout: number, rng: (() => number) | null): number {
    if (rng === null && n <= SHORT_PIECE) return this.mergeShort(n);
    return this.mergeLong(n, dropout, rng);
  }

  /** Rescans a compact array after each merge: for the short pieces that make up most text this beats a heap. */
  private mergeShort(n: number): number {
    const { sym, merges, mergeResult } = this;
    const rank = this.prev; // rank of the pair (i, i + 1), or -1; prev is free on this path
    for (let i = 0; i + 1 < n; i++) rank[i] = merges.get(sym[i]!, sym[i + 1]!);
    let len = n;
    for (;;) {
      let best = -1, bestRank = 0x7fffffff;
      for (let i = 0; i + 1 < len; i++) {
        const r = rank[i]!;
        if (r >= 0 && r < bestRank) (bestRank = r), (best = i);
      }
      if (best < 0) return len;
      const merged = mergeResult[bestRank]!;
      sym[best] = merged;
      len--;
      for (let i = best + 1; i < len; i++) {
        sym[i] = sym[i + 1]!;
        rank[i] = rank[i + 1]!;
      }
      if (best > 0) rank[best - 1] = merges.get(sym[best - 1]!, merged);
      rank[best] = best + 1 < len ? merges.get(merged, sym[best + 1]!) : -1;
    }
  }

  /**
   * Heap of (rank, position) over a doubly linked list of symbols, so each merge is O(log n) and a 100 kB piece
   * without spaces stays near-linear. Also the dropout path: a skipped merge goes back into the heap once something
   * else has merged, as in HF's BPE-dropout.
   */
  private mergeLong(n: number, dropout: number, rng: (() => number) | null): number {
    const { sym, prev, next, merges, mergeLeft, mergeRight, mergeResult } = this;
    this.heapSize = 0;
    for (let i = 0; i + 1 < n; i++) {
      const r = merges.get(sym[i]!, sym[i + 1]!);
      if (r >= 0) this.push(r * RANK_SHIFT + i);
    }
    const skipped = this.skipped;
    skipped.length = 0;
    while (this.heapSize > 0) {
      const key = this.pop();
      const rank = Math.floor(key / RANK_SHIFT);
      const i = key - rank * RANK_SHIFT;
      const j = next[i]!;
      // Stale entries (a neighbour already merged away) are dropped here rather than searched for in the heap.
      if (sym[i] !== mergeLeft[rank] || j < 0 || sym[j] !== mergeRight[rank]) continue;
      if (rng !== null) {
        if (rng() < dropout) {
          skipped.push(key);
          continue;
        }
        for (const s of skipped) this.push(s);
        skipped.length = 0;
      }
      const merged = mergeResult[rank]!;
      sym[i] = merged;
      sym[j] = -1;
      const k = next[j]!;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      const p = prev[i]!;
      if (p >= 0) {
        const r = merges.get(sym[p]!, merged);
        if (r >= 0) this.push(r * RANK_SHIFT + p);
      }
      if (k >= 0) {
        const r = merges.get(merged, sym[k]!);
        if (r >= 0) this.push(r * RANK_SHIFT + i);
      }
    }
    // Compact in place; safe because the write index never passes the read index. Position 0 always survives,
    // since a merge removes its right-hand symbol.
    let count = 0;
    for (let i = 0; i >= 0; i = next[i]!) sym[count++] = sym[i]!;
    return count;
  }

  private push(key: number): void {
    const heap = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= key) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = key;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    const size = --this.heapSize;
    const last = heap[size]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
      if (heap[c]! >= last) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
    return top;
  }

  /** Appends sym[0..count) to the output, and caches it for the piece when given a key. */
  private collect(count: number, length: number, cacheKey: string | null): number {
    if (length + count > this.out.length) this.out = grow(this.out, length + count);
    const { sym, out } = this;
    for (let i = 0; i < count; i++) out[length + i] = sym[i]!;
    if (cacheKey !== null) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(cacheKey, out.slice(length, length + count));
    }
    return length + count;
  }
}

function grow(buf: Int32Array, need: number): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(Math.max(need, buf.length * 2));
  bigger.set(buf);
  return bigger;
}
