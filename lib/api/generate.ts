/**
 * One generate request on loaded weights: n samples drawn `batch` at a time, decoded, reranked with CLIP, the best
 * `keep` encoded as PNG. Runs wherever it is called (the API calls it inside its worker thread, with the synchronous
 * op runner); options are checked here so a bad request fails before any work.
 */
import { DalleAbortError, DalleError } from '../errors.js';
import { decodeImage, encodePng } from '../data/image.js';
import { centerSquare } from '../data/preprocess.js';
import { rerank } from '../models/clip/train.js';
import { generateImages } from '../models/transformer/generate.js';
import type { OpRunner } from '../nn/runner.js';
import type { ModelFiles } from './model-files.js';
import type { Backend, GeneratedImage, GenerateOptions, GenerateProgress, GenerateResult } from './types.js';

/** GenerateOptions without the two that cannot cross a thread (the API carries them by message and shared flag). */
export type GenerateRequest = Omit<GenerateOptions, 'signal' | 'onProgress'>;

export interface RequestHooks {
  run: OpRunner;
  backend: Backend;
  /** Polled between tokens: true stops the request with a DalleAbortError. */
  aborted: () => boolean;
  progress: (p: GenerateProgress) => void;
}

const MAX_SAMPLES = 4096;

function intIn(name: string, value: unknown, min: number, max: number): number {
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)) {
    throw new DalleError('E_INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export async function generateRequest(files: ModelFiles, prompt: string, options: GenerateRequest, hooks: RequestHooks): Promise<GenerateResult> {
  const t0 = performance.now();
  if (typeof prompt !== 'string') throw new DalleError('E_INVALID_ARGUMENT', `prompt must be a string, got ${typeof prompt}`);
  const n = intIn('n', options.n ?? 8, 1, MAX_SAMPLES);
  const keep = intIn('keep', options.keep ?? n, 1, n);
  const batch = intIn('batch', options.batch ?? Math.min(n, 16), 1, MAX_SAMPLES);
  const seed = intIn('seed', options.seed ?? 0, -(2 ** 31), 2 ** 32 - 1);
  const { dvae, transformer, tokenizer } = files;
  const size = dvae.config.imageSize;
  let completion: { image: Uint8Array; rows?: number } | undefined;
  if (options.image !== undefined) {
    if (!(options.image instanceof Uint8Array)) throw new DalleError('E_INVALID_ARGUMENT', 'image must be the bytes of a PNG or JPEG file (a Uint8Array)');
    completion = { image: centerSquare(decodeImage(options.image, 'image'), size).data };
    if (options.rows !== undefined) completion.rows = intIn('rows', options.rows, 0, transformer.config.grid - 1);
  } else if (options.rows !== undefined) {
    throw new DalleError('E_INVALID_ARGUMENT', 'rows needs an image to complete');
  }
  const N = transformer.seq.imageLen;
  const per = size * size * 3;
  const pixels = new Uint8Array(n * per);
  const controller = new AbortController();
  let truncated = false;
  let sampled = 0;
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const before = sampled;
    const out = await generateImages(transformer, dvae, tokenizer, Array<string>(count).fill(prompt), {
      seed,
      streamOffset: start,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      prompt: completion,
      run: hooks.run,
      signal: controller.signal,
      onProgress: (p) => {
        sampled = before + p.tokens * count;
        hooks.progress({ tokens: sampled, total: n * N, tokensPerSecond: sampled / ((performance.now() - t0) / 1000), phase: 'sampling' });
        // The sampler checks its signal before each token: aborting here stops it within one.
        if (hooks.aborted()) controller.abort();
      },
    });
    if (hooks.aborted()) throw new DalleAbortError('generation');
    truncated ||= out.truncated.length > 0;
    pixels.set(out.images, start * per);
  }
  let order = Array.from({ length: keep }, (_, i) => i);
  let scores: Array<number | null> = order.map(() => null);
  if (files.clip) {
    hooks.progress({ tokens: n * N, total: n * N, tokensPerSecond: (n * N) / ((performance.now() - t0) / 1000), phase: 'reranking' });
    const ranked = await rerank(files.clip.model, prompt, pixels, keep, { run: hooks.run, tokenizer: files.clip.tokenizer });
    order = ranked.order;
    scores = ranked.scores;
  }
  const images: GeneratedImage[] = order.map((index, r) => {
    const data = pixels.slice(index * per, (index + 1) * per);
    // A copy, not a view: small Buffers share Node's pool, which must not travel to another thread.
    const png = new Uint8Array(encodePng({ width: size, height: size, data }));
    return { png, pixels: data, score: scores[r]!, index };
  });
  return { images, size, truncated, seconds: (performance.now() - t0) / 1000, backend: hooks.backend };
}
