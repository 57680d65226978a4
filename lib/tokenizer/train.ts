/**
 * Byte-level BPE training on captions. Words (pre-tokenized pieces) are counted once, then merges are learned with
 * incremental pair-count updates: each merge touches only the words that contain its pair, found through a
 * pair -> words index, instead of recounting the corpus.
 */
import { DalleError } from '../errors.js';
import { BpeTokenizer } from './bpe.js';
import { byteToChar } from './bytes.js';
import { normalizeCaption } from './normalize.js';
import { pieceEnd } from './pretokenize.js';

export interface TrainOptions {
  /** Target vocabulary size, 256 byte tokens included. Training stops early when no pair is frequent enough. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2: a pair seen once teaches nothing reusable). */
  minFrequency?: number;
}

function invalid(message: string): DalleError {
  return new DalleError('E_INVALID_ARGUMENT', message);
}

/** Max-heap of (count, pair key), ties to the smaller key so training is deterministic. Entries may be stale. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!, k = this.keys[i]!;
    this.counts[i] = this.counts[j]!;
    this.keys[i] = this.keys[j]!;
    this.counts[j] = c;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.keys.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      for (let i = 0; ; ) {
        let best = i;
        const l = 2 * i + 1, r = l + 1;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

export function trainBpe(corpus: Iterable<string>, opts: TrainOptions): BpeTokenizer {
  const { vocabSize, minFrequency = 2 } = opts ?? ({} as TrainOptions);
  // 2^26 keeps left * 2^bits + right exact in a double.
  if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > 2 ** 26) {
    throw invalid(`vocabSize must be an integer in [256, 2^26] (256 byte tokens come first), got ${vocabSize}`);
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw invalid(`minFrequency must be a positive integer, got ${minFrequency}`);
  if (corpus === null || typeof corpus !== 'object' || !(Symbol.iterator in corpus)) {
    throw invalid('trainBpe expects an iterable of caption strings');
  }

  const wordCounts = new Map<string, number>();
  let index = 0;
  for (const caption of corpus) {
    if (typeof caption !== 'string') throw invalid(`corpus item ${index} is a ${typeof caption}, not a string`);
    index++;
    const text = normalizeCaption(caption);
    for (let i = 0; i < text.length; ) {
      const end = pieceEnd(text, i);
      const word = text.slice(i, end);
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
      i = end;
    }
  }

  // Symbols start as bytes, and byte b is token b, so a word's initial symbols are just its UTF-8 bytes.
  const utf8 = new TextEncoder();
  const words: Int32Array[] = [];
  const lengths: number[] = [];
  const freqs: number[] = [];
  for (const [word, freq] of wordCounts) {
    const symbols = Int32Array.from(utf8.encode(word));
    words.push(symbols);
    lengths.push(symbols.length);
    freqs.push(freq);
  }

  const scale = 2 ** Math.max(8, Math.ceil(Math.log2(vocabSize)));
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const add = (key: number, delta: number, w: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
    if (delta > 0) {
      let set = where.get(key);
      if (set === undefined) where.set(key, (set = new Set()));
      set.add(w);
    }
  };
  words.forEach((s, w) => {
    for (let i = 0; i + 1 < s.length; i++) add(s[i]! * scale + s[i + 1]!, freqs[w]!, w);
  });
  const heap = new PairHeap();
  for (const [key, count] of pairCount) if (count >= minFrequency) heap.push(count, key);

  const vocab: string[] = [...byteToChar];
  const merges: Array<[string, string]> = [];
  while (vocab.length < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const actual = pairCount.get(key) ?? 0;
    if (actual !== count) {
      // Counts only fall for existing pairs, so a stale entry goes back in at its true, lower place.
      if (actual >= minFrequency) heap.push(actual, key);
      continue;
    }
    const a = Math.floor(key / scale), b = key - a * scale;
    const merged = vocab.length;
    merges.push([vocab[a]!, vocab[b]!]);
    vocab.push(vocab[a]! + vocab[b]!);

    const created = new Set<number>();
    for (const w of where.get(key) ?? []) {
      const s = words[w]!, len = lengths[w]!, f = freqs[w]!;
      let out = 0;
      // Left to right, in place: s[out - 1] is already the post-merge left neighbour, which keeps runs like
      // "a b a b" and "a a a" counted exactly.
      for (let i = 0; i < len; ) {
        if (i + 1 < len && s[i] === a && s[i + 1] === b) {
          add(key, -f, w);
          if (out > 0) {
            const x = s[out - 1]!;
            add(x * scale + a, -f, w);
            add(x * scale + merged, f, w);
            created.add(x * scale + merged);
          }
          if (i + 2 < len) {
            const y = s[i + 2]!;
            add(b * scale + y, -f, w);
            add(merged * scale + y, f, w);
            created.add(merged * scale + y);
          }
          s[out++] = merged;
          i += 2;
        } else {
          s[out++] = s[i++]!;
        }
      }
      lengths[w] = out;
    }
    pairCount.delete(key);
    where.delete(key);
    for (const k of created) {
      const c = pairCount.get(k)!;
      if (c >= minFrequency) heap.push(c, k);
    }
  }
  return new BpeTokenizer({ vocab, merges, normalizer: 'caption' });
}
