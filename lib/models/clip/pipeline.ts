/**
 * The paper's generation pipeline (§2.6): sample n images for a prompt, decode them, score each against the prompt
 * with CLIP and keep the best. Sampling runs `batch` images at a time so n = 512 fits in memory.
 */
import { DalleError, throwIfAborted } from '../../errors.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import type { Dvae } from '../dvae/model.js';
import { generateImages, type GenerateImagesOptions } from '../transformer/generate.js';
import type { DalleTransformer } from '../transformer/model.js';
import { textSlots } from '../transformer/train.js';
import type { Clip } from './model.js';
import { rerank } from './train.js';

export interface DallePipeline {
  transformer: DalleTransformer;
  tokenizer: BpeTokenizer;
  dvae: Dvae;
  clip: Clip;
  /** CLIP's own tokenizer (default: the transformer's). */
  clipTokenizer?: BpeTokenizer;
}

export interface RerankedOptions extends Omit<GenerateImagesOptions, 'onProgress'> {
  /** Samples drawn; the paper's default is 512. Default 32. */
  n?: number;
  /** Samples returned, best first. Default 1. */
  keep?: number;
  /** Samples decoded and scored at once. Default 32. */
  batch?: number;
  onProgress?: (p: { sampled: number; total: number }) => void;
}

export interface RerankedImages {
  /** uint8 [keep, S, S, 3], best first. */
  images: Uint8Array;
  /** CLIP cosine similarity of each kept image to the prompt. */
  scores: number[];
  /** Index of each kept image among the n drawn (sample i uses stream i of the seed). */
  indices: number[];
  size: number;
}

export async function generateReranked(p: DallePipeline, prompt: string, options: RerankedOptions = {}): Promise<RerankedImages> {
  const n = options.n ?? 32;
  const keep = options.keep ?? 1;
  const batch = options.batch ?? 32;
  for (const [name, v] of [['n', n], ['keep', keep], ['batch', batch]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new DalleError('E_INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(v)}`);
  }
  if (keep > n) throw new DalleError('E_INVALID_ARGUMENT', `keep (${keep}) exceeds n (${n})`);
  if (p.clip.config.imageSize !== p.dvae.config.imageSize) throw new DalleError('E_INVALID_ARGUMENT', `CLIP takes ${p.clip.config.imageSize}px images but the dVAE makes ${p.dvae.config.imageSize}px`);
  const clipText = textSlots(p.clipTokenizer ?? p.tokenizer, prompt, p.clip.config.textLen);
  const per = p.dvae.config.imageSize ** 2 * 3;
  // Only the best `keep` so far are kept: memory stays at one batch plus `keep` images.
  let best: Array<{ index: number; score: number; image: Uint8Array }> = [];
  const seed = options.seed ?? 0;
  for (let start = 0; start < n; start += batch) {
    throwIfAborted(options.signal, 'generation');
    const count = Math.min(batch, n - start);
    const { n: _n, keep: _k, batch: _b, onProgress: _p, ...sampling } = options;
    const out = await generateImages(p.transformer, p.dvae, p.tokenizer, Array<string>(count).fill(prompt), { ...sampling, seed, streamOffset: start });
    const ranked = await rerank(p.clip, clipText, out.images, count, { run: options.run });
    ranked.order.forEach((i, r) => best.push({ index: start + i, score: ranked.scores[r]!, image: out.images.slice(i * per, (i + 1) * per) }));
    best = best.sort((a, b) => b.score - a.score || a.index - b.index).slice(0, keep);
    options.onProgress?.({ sampled: start + count, total: n });
  }
  const images = new Uint8Array(keep * per);
  best.forEach((b, i) => images.set(b.image, i * per));
  return { images, scores: best.map((b) => b.score), indices: best.map((b) => b.index), size: p.dvae.config.imageSize };
}
