/** The transformer's training loss: masked, weighted cross-entropy over one text + image head. */
import { DalleError } from '../errors.js';
import { Tensor, type DeviceName } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

/** crossEntropy outputs. */
export interface CrossEntropyResult {
  /** Shape [1]: Σ_n weights[n]·CE_n, the value to differentiate. */
  loss: Tensor;
  /** Shape [N]: the unweighted CE_n of each position (for metrics; no gradient flows from it). */
  perPosition: Tensor;
}

/**
 * Cross-entropy with a per-position logit mask and weights.
 *   logits  f32 [N, V]
 *   targets i32 [N], targets[n] ∈ [ranges[n, 0], ranges[n, 1])
 *   weights f32 [N] (0 ignores a position, though its target must still be in range)
 *   ranges  i32 [N, 2]: position n may only emit ids in [ranges[n, 0], ranges[n, 1]); logits
 *           outside count as −∞. A range that is empty or leaves [0, V), or a target outside its
 *           range, throws E_INVALID_ARGUMENT naming the position.
 * CE_n = logsumexp(logits[n, lo:hi]) − logits[n, targets[n]], max-subtracted.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, weights: Tensor, ranges: Tensor): CrossEntropyResult {
  const [loss, perPosition] = runOp('cross_entropy_forward', [logits, targets, weights, ranges]);
  return { loss: loss!, perPosition: perPosition! };
}

/**
 * dlogits [N, V] = dloss·weights[n]·(softmax over the range − onehot(target)) inside each
 * position's range and 0 outside; dloss is f32 [1] (1 for a plain loss.backward()).
 */
export function crossEntropyBackward(
  logits: Tensor,
  targets: Tensor,
  weights: Tensor,
  ranges: Tensor,
  dloss: Tensor,
): Tensor {
  return runOp1('cross_entropy_backward', [logits, targets, weights, ranges, dloss]);
}

export interface DalleLossLayout {
  /** T, text slots per sample (text ids or per-position pads; pads count in CE_text). */
  textLen: number;
  /** Image tokens per sample (1024 for a 32×32 grid). */
  imageLen: number;
  batch: number;
  /** Text-side ids: the BPE vocabulary plus the T per-position pad ids. */
  textVocab: number;
  /** dVAE codebook size (8192 in the paper). */
  imageVocab: number;
  /** Where the tensors are made; default 'cpu'. */
  device?: DeviceName;
}

/** The weights [rows] and ranges [rows, 2] (rows = batch·(textLen + imageLen)) for crossEntropy. */
export interface DalleLossWeights {
  weights: Tensor;
  ranges: Tensor;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1)
    throw new DalleError('E_INVALID_ARGUMENT', `dalleLossWeights: ${name} must be a positive 32-bit integer, got ${v}`);
}

/**
 * The spec's L = 1/8·CE_text + 7/8·CE_image, each CE averaged over its own tokens in the batch, as
 * crossEntropy weights and ranges. Layout, per sample b (rows b·(T+N) .. (b+1)·(T+N) − 1), with
 * logits [batch·(T+N), textVocab + imageVocab] and targets [s_0..s_{T−1}, z_0..z_{N−1}]:
 *   text rows  (first T):  weight 1/(8·batch·T),  range [0, textVocab)
 *   image rows (next N):   weight 7/(8·batch·N),  range [textVocab, textVocab + imageVocab)
 * so image targets are the dVAE codes offset by textVocab. The text weights sum to 1/8 and the
 * image weights to 7/8. The caller owns (and disposes) both tensors.
 */
export function dalleLossWeights(layout: DalleLossLayout): DalleLossWeights {
  const { textLen: T, imageLen: N, batch, textVocab, imageVocab } = layout;
  positiveInt('textLen', T);
  positiveInt('imageLen', N);
  positiveInt('batch', batch);
  positiveInt('textVocab', textVocab);
  positiveInt('imageVocab', imageVocab);
  positiveInt('textVocab + imageVocab', textVocab + imageVocab);
  positiveInt('batch·(textLen + imageLen)', batch * (T + N));
  const rows = batch * (T + N);
  const w = new Float32Array(rows);
  const r = new Int32Array(rows * 2);
  const wText = 1 / (8 * batch * T);
  const wImage = 7 / (8 * batch * N);
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < T + N; p++) {
      const row = b * (T + N) + p;
      const text = p < T;
      w[row] = text ? wText : wImage;
      r[2 * row] = text ? 0 : textVocab;
      r[2 * row + 1] = text ? textVocab : textVocab + imageVocab;
    }
  }
  const device = layout.device ?? 'cpu';
  const weights = Tensor.from(w, [rows], { device });
  try {
    return { weights, ranges: Tensor.from(r, [rows, 2], { device }) };
  } catch (err) {
    weights.dispose();
    throw err;
  }
}
