/**
 * Sampling image codes from the transformer, one token at a time over a key/value cache.
 *
 * Each layer caches its keys and values in raster order and the cached attention op applies that layer's mask to the
 * cache directly (column layers included: in raster order their keys are every W-th cell above the query), so feeding
 * tokens one by one gives the logits of a full forward pass. A prompt (BOS and the text slots, plus the first rows of
 * an image for completion) is fed in one call.
 */
import { DalleError, throwIfAborted } from '../../errors.js';
import { asyncRunner, disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { type AttentionMaskKind, maskCode } from '../../ops/attention.js';
import { mulberry32 } from '../../rng.js';
import { Tensor } from '../../tensor.js';
import { layerMask } from './config.js';
import { embed, headForward, type LayerContext, linear } from './layers.js';
import type { DalleTransformer } from './model.js';

/** Feeds tokens to the model incrementally, keeping each layer's keys and values. */
export class IncrementalDecoder implements Disposable {
  readonly batch: number;
  #position = 0;
  readonly #keys: Tensor[] = [];
  readonly #values: Tensor[] = [];
  readonly #ctx: LayerContext;
  readonly #masks: AttentionMaskKind[];

  constructor(readonly model: DalleTransformer, batch: number, run: OpRunner = asyncRunner) {
    if (!Number.isInteger(batch) || batch <= 0) throw new DalleError('E_INVALID_ARGUMENT', `batch must be a positive integer, got ${String(batch)}`);
    this.batch = batch;
    this.#ctx = model.context(run);
    const { heads, width, layers } = model.config;
    const shape = [batch, heads, model.seq.seqLen, width / heads];
    this.#masks = model.masks;
    try {
      for (let l = 0; l < layers; l++) {
        this.#keys.push(Tensor.zeros(shape));
        this.#values.push(Tensor.zeros(shape));
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** Sequence positions fed so far. */
  get position(): number {
    return this.#position;
  }

  /**
   * Feeds ids [B, n] (input ids: BOS, text slots, image codes offset by textSide) at positions position.. position +
   * n − 1 and returns their logits [B·n, headSize].
   */
  async feed(ids: Int32Array): Promise<Tensor> {
    const B = this.batch;
    const { seqLen: S } = this.model.seq;
    const { width: C, heads } = this.model.config;
    if (!(ids instanceof Int32Array) || ids.length === 0 || ids.length % B !== 0) throw new DalleError('E_INVALID_ARGUMENT', `ids must be an Int32Array of ${B}·n ids`);
    const n = ids.length / B;
    const pos = this.#position;
    if (pos + n > S) throw new DalleError('E_INVALID_ARGUMENT', `feeding ${n} tokens at position ${pos} passes the sequence length ${S}`);
    const { run } = this.#ctx;
    const ctx = this.#ctx;
    using idsT = Tensor.from(ids, [B, n], { dtype: 'i32' });
    const x3 = await embed(ctx, idsT, pos);
    let x = x3.reshape([B * n, C]);
    x3.dispose();
    try {
      for (let l = 0; l < this.#masks.length; l++) {
        const p = `blocks.${l}`;
        const [ln1] = await run('layernorm_forward', [x, ctx.params.get(`${p}.ln1.w`), ctx.params.get(`${p}.ln1.b`)], undefined);
        let q: Tensor | undefined, k: Tensor | undefined, v: Tensor | undefined;
        try {
          using qkv = await linear(ctx, `${p}.attn.qkv`, ln1!);
          using qkv3 = qkv.reshape([B, n, 3 * C]);
          [q, k, v] = await run('qkv_split_forward', [qkv3], { heads });
        } finally {
          ln1!.dispose();
        }
        let x1: Tensor;
        try {
          await run('kv_cache_write', [this.#keys[l]!, k!], { pos });
          await run('kv_cache_write', [this.#values[l]!, v!], { pos });
          using att = await run1(run, 'attention_cached_forward', [q!, this.#keys[l]!, this.#values[l]!], {
            pos,
            mask: maskCode(this.#masks[l]!),
            text_len: this.model.seq.prefixLen,
            grid: this.model.seq.grid,
          });
          using merged3 = await run1(run, 'heads_merge_forward', [att]);
          using merged = merged3.reshape([B * n, C]);
          using proj = await linear(ctx, `${p}.attn.proj`, merged);
          x1 = await run1(run, 'residual_forward', [x, proj], { scale: 1 });
        } finally {
          disposeAll(q, k, v);
        }
        try {
          const [ln2] = await run('layernorm_forward', [x1, ctx.params.get(`${p}.ln2.w`), ctx.params.get(`${p}.ln2.b`)]);
          using ln2t = ln2!;
          using fc = await linear(ctx, `${p}.mlp.fc`, ln2t);
          using act = await run1(run, 'gelu_forward', [fc]);
          using out = await linear(ctx, `${p}.mlp.proj`, act);
          const y = await run1(run, 'residual_forward', [x1, out], { scale: 1 });
          x.dispose();
          x = y;
        } finally {
          x1.dispose();
        }
      }
      const { logits } = await headForward(ctx, x, false);
      this.#position = pos + n;
      return logits;
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    disposeAll(...this.#keys, ...this.#values);
    this.#keys.length = 0;
    this.#values.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface SamplingOptions {
  /** Divides the logits; default 1 (the paper's). 0 picks the most likely code. */
  temperature?: number;
  /** Keep only the k most likely codes; 0 (default) keeps all. */
  topK?: number;
  /** Keep the smallest set of codes whose probability reaches p; 1 (default) keeps all. */
  topP?: number;
}

export interface GenerateProgress {
  /** Image tokens produced so far (the prompt's rows included) and in all. */
  tokens: number;
  total: number;
  /** Sampled tokens per second, over the whole batch. */
  tokensPerSecond: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Key of the sampling streams: sample b of a call draws from stream (seed, streamOffset + b). Default 0. */
  seed?: number;
  /**
   * First stream of this call (default 0): drawing n samples as several calls with offsets 0, k, 2k, … gives the
   * same samples as one call, so results do not depend on the batch size.
   */
  streamOffset?: number;
  /**
   * Image completion: codes of B images (or of one, used for all), W² each, whose first `rows` rows are kept and the
   * rest sampled. `rows` defaults to the paper's image-to-image prompts, the top 15 of 32 rows scaled to the grid
   * ({@link defaultPromptRows}).
   */
  prompt?: { codes: Int32Array; rows?: number };
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  run?: OpRunner;
}

/** The paper's completion prompt: the top 15 of 32 rows, scaled to the grid (⌊15·W/32 + 1/2⌋). */
export function defaultPromptRows(grid: number): number {
  return Math.floor((15 * grid) / 32 + 0.5);
}

function checkSampling(o: SamplingOptions): Required<SamplingOptions> {
  const t = o.temperature ?? 1;
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  if (!(Number.isFinite(t) && t >= 0)) throw new DalleError('E_INVALID_ARGUMENT', `temperature must be a finite number ≥ 0, got ${String(t)}`);
  if (!(Number.isInteger(k) && k >= 0)) throw new DalleError('E_INVALID_ARGUMENT', `topK must be an integer ≥ 0, got ${String(k)}`);
  if (!(p > 0 && p <= 1)) throw new DalleError('E_INVALID_ARGUMENT', `topP must be in (0, 1], got ${String(p)}`);
  return { temperature: t, topK: k, topP: p };
}

/**
 * Draws one index from logits[from, to) under temperature, top-k and top-p, with uniform u ∈ [0, 1). Ties at the
 * top-k boundary keep every tied code; top-p keeps codes in order of probability until their sum reaches p.
 */
export function sampleIndex(logits: Float32Array, from: number, to: number, o: Required<SamplingOptions>, u: number): number {
  const n = to - from;
  if (o.temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[from + i]! > logits[from + best]!) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[from + i]!);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((logits[from + i]! - max) / o.temperature);
    sum += p[i]!;
  }
  if (o.topK > 0 || o.topP < 1) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    let keep = n;
    if (o.topK > 0 && o.topK < n) {
      keep = o.topK;
      while (keep < n && p[order[keep]!] === p[order[keep - 1]!]) keep++;
    }
    if (o.topP < 1) {
      let acc = 0;
      for (let r = 0; r < keep; r++) {
        acc += p[order[r]!]! / sum;
        if (acc >= o.topP) {
          keep = r + 1;
          break;
        }
      }
    }
    sum = 0;
    for (let r = 0; r < n; r++) {
      if (r < keep) sum += p[order[r]!]!;
      else p[order[r]!] = 0;
    }
  }
  let target = u * sum;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (p[i]! <= 0) continue;
    last = i;
    target -= p[i]!;
    if (target < 0) return i;
  }
  return last;
}

/**
 * Samples B images' codes given their text slots `text` (B·T ids, −1 for an empty slot) and returns them, B·W² codes
 * in raster order. Off the main thread (every op runs on a libuv worker by default), cancellable between tokens (rejects with a
 * DalleAbortError, name 'AbortError').
 */
export async function generateCodes(model: DalleTransformer, text: Int32Array, options: GenerateOptions = {}): Promise<Int32Array> {
  const sampling = checkSampling(options);
  const { textLen: T, imageLen: N, textSide, bos, grid: W } = model.seq;
  const { textVocab, imageVocab } = model.config;
  if (!(text instanceof Int32Array) || text.length === 0 || text.length % T !== 0) throw new DalleError('E_INVALID_ARGUMENT', `text must be an Int32Array of B·${T} slots`);
  const B = text.length / T;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DalleError('E_INVALID_ARGUMENT', `seed must be an integer, got ${String(seed)}`);
  let rows = 0;
  let promptCodes: Int32Array | null = null;
  if (options.prompt) {
    rows = options.prompt.rows ?? defaultPromptRows(W);
    promptCodes = options.prompt.codes;
    if (!(Number.isInteger(rows) && rows >= 0 && rows < W)) throw new DalleError('E_INVALID_ARGUMENT', `prompt.rows must be an integer in [0, ${W}), got ${String(rows)}`);
    if (!(promptCodes instanceof Int32Array) || (promptCodes.length !== N && promptCodes.length !== B * N)) {
      throw new DalleError('E_INVALID_ARGUMENT', `prompt.codes must hold ${N} codes (one image) or ${B * N} (one per sample)`);
    }
    for (let i = 0; i < promptCodes.length; i++) {
      const c = promptCodes[i]!;
      if (!(Number.isInteger(c) && c >= 0 && c < imageVocab)) throw new DalleError('E_INVALID_ARGUMENT', `prompt.codes[${i}] = ${c}: outside [0, ${imageVocab})`);
    }
  }
  const known = rows * W;
  const codes = new Int32Array(B * N);
  // The prompt: BOS, the text slots (pads where empty), the first `known` codes.
  const promptLen = T + 1 + known;
  const first = new Int32Array(B * promptLen);
  for (let b = 0; b < B; b++) {
    first[b * promptLen] = bos;
    for (let j = 0; j < T; j++) {
      const id = text[b * T + j]!;
      if (!(Number.isInteger(id) && id >= -1 && id < textVocab)) throw new DalleError('E_INVALID_ARGUMENT', `text[${b}][${j}] = ${id}: outside [0, ${textVocab}) and not −1 (pad)`);
      first[b * promptLen + 1 + j] = id === -1 ? textVocab + j : id;
    }
    for (let i = 0; i < known; i++) {
      const c = promptCodes!.length === N ? promptCodes![i]! : promptCodes![b * N + i]!;
      codes[b * N + i] = c;
      first[b * promptLen + T + 1 + i] = textSide + c;
    }
  }
  const streamOffset = options.streamOffset ?? 0;
  if (!(Number.isInteger(streamOffset) && streamOffset >= 0)) throw new DalleError('E_INVALID_ARGUMENT', `streamOffset must be an integer ≥ 0, got ${String(streamOffset)}`);
  const rngs = Array.from({ length: B }, (_, b) => mulberry32(mixSeed(seed, streamOffset + b)));
  using decoder = new IncrementalDecoder(model, B, options.run ?? asyncRunner);
  const t0 = performance.now();
  let ids = first;
  for (let i = known; i < N; i++) {
    throwIfAborted(options.signal, 'generation');
    using logits = await decoder.feed(ids);
    const values = logits.toFloat32Array();
    const n = ids.length / B;
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const row = (b * n + n - 1) * model.seq.headSize;
      const c = sampleIndex(values, row + textSide, row + textSide + imageVocab, sampling, rngs[b]!());
      codes[b * N + i] = c;
      next[b] = textSide + c;
    }
    ids = next;
    if (options.onProgress) {
      const seconds = (performance.now() - t0) / 1000;
      options.onProgress({ tokens: i + 1, total: N, tokensPerSecond: ((i + 1 - known) * B) / seconds });
    }
  }
  return codes;
}

/** A 32-bit seed for stream b of `seed` (splitmix-style mixing, so neighbouring seeds give unrelated streams). */
function mixSeed(seed: number, b: number): number {
  let h = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}
