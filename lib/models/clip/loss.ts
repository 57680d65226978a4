/**
 * CLIP's contrastive objective on a batch of paired embeddings, forward and backward, in plain arithmetic: the
 * embeddings are [B, E] with B and E small (a training batch), so this is cheaper than a round of native ops and is
 * checked against a hand computation in the tests.
 *
 *   t̂ = t/|t|, î = i/|i|, s = min(e^θ, 100), logits = s·î·t̂ᵀ [B_image, B_text]
 *   loss = ½·(CE over each row of logits + CE over each column), the right pair on the diagonal, each CE a batch mean.
 *
 * θ is learned and starts at ln(1/0.07) (openai/CLIP); the cap at 100 is CLIP's. Past the cap θ gets no gradient from
 * the loss (the scale is constant there).
 */
import { DalleError } from '../../errors.js';

export const CLIP_MAX_LOGIT_SCALE = 100;
export const CLIP_INIT_LOG_SCALE = Math.log(1 / 0.07);

export interface ClipLossResult {
  loss: number;
  /** The similarity scale used, min(e^θ, 100). */
  scale: number;
  /** Fraction of rows (images) whose best text is their own, and of columns (texts) whose best image is theirs. */
  imageToTextAccuracy: number;
  textToImageAccuracy: number;
  dText: Float32Array;
  dImage: Float32Array;
  dLogScale: number;
}

/** L2-normalises each row of x [B, E] (in double); returns the unit rows and the norms. */
export function normalizeRows(x: Float32Array, B: number, E: number): { unit: Float64Array; norms: Float64Array } {
  const unit = new Float64Array(B * E);
  const norms = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let ss = 0;
    for (let e = 0; e < E; e++) ss += x[b * E + e]! ** 2;
    const n = Math.sqrt(ss) || 1e-12;
    norms[b] = n;
    for (let e = 0; e < E; e++) unit[b * E + e] = x[b * E + e]! / n;
  }
  return { unit, norms };
}

/** Cosine similarities [B_a, B_b] of rows of a [B_a, E] and b [B_b, E]. */
export function cosineMatrix(a: Float32Array, b: Float32Array, E: number): Float64Array {
  const A = a.length / E;
  const Bn = b.length / E;
  const ua = normalizeRows(a, A, E).unit;
  const ub = normalizeRows(b, Bn, E).unit;
  const out = new Float64Array(A * Bn);
  for (let i = 0; i < A; i++) for (let j = 0; j < Bn; j++) {
    let s = 0;
    for (let e = 0; e < E; e++) s += ua[i * E + e]! * ub[j * E + e]!;
    out[i * Bn + j] = s;
  }
  return out;
}

/** The loss and its gradients w.r.t. the unnormalised text [B, E] and image [B, E] embeddings and θ. */
export function clipLoss(text: Float32Array, image: Float32Array, E: number, logScale: number): ClipLossResult {
  const B = text.length / E;
  if (!Number.isInteger(B) || B < 1 || image.length !== text.length) {
    throw new DalleError('E_INVALID_ARGUMENT', `clipLoss: text and image must both be [B, ${E}], got ${text.length} and ${image.length} values`);
  }
  if (!Number.isFinite(logScale)) throw new DalleError('E_NON_FINITE', `clipLoss: the log scale is ${logScale}`);
  const capped = Math.exp(logScale) >= CLIP_MAX_LOGIT_SCALE;
  const scale = capped ? CLIP_MAX_LOGIT_SCALE : Math.exp(logScale);
  const t = normalizeRows(text, B, E);
  const im = normalizeRows(image, B, E);
  const cos = new Float64Array(B * B);
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) {
    let s = 0;
    for (let e = 0; e < E; e++) s += im.unit[i * E + e]! * t.unit[j * E + e]!;
    cos[i * B + j] = s;
  }
  // G = dloss/dlogits: (softmax over rows − I)/(2B) + (softmax over columns − I)/(2B).
  const G = new Float64Array(B * B);
  let loss = 0;
  let rowsRight = 0;
  let colsRight = 0;
  for (let i = 0; i < B; i++) {
    let m = -Infinity;
    let arg = 0;
    for (let j = 0; j < B; j++) if (scale * cos[i * B + j]! > m) [m, arg] = [scale * cos[i * B + j]!, j];
    let z = 0;
    for (let j = 0; j < B; j++) z += Math.exp(scale * cos[i * B + j]! - m);
    loss += (m + Math.log(z) - scale * cos[i * B + i]!) / (2 * B);
    for (let j = 0; j < B; j++) G[i * B + j]! += (Math.exp(scale * cos[i * B + j]! - m) / z - (i === j ? 1 : 0)) / (2 * B);
    if (arg === i) rowsRight++;
  }
  for (let j = 0; j < B; j++) {
    let m = -Infinity;
    let arg = 0;
    for (let i = 0; i < B; i++) if (scale * cos[i * B + j]! > m) [m, arg] = [scale * cos[i * B + j]!, i];
    let z = 0;
    for (let i = 0; i < B; i++) z += Math.exp(scale * cos[i * B + j]! - m);
    loss += (m + Math.log(z) - scale * cos[j * B + j]!) / (2 * B);
    for (let i = 0; i < B; i++) G[i * B + j]! += (Math.exp(scale * cos[i * B + j]! - m) / z - (i === j ? 1 : 0)) / (2 * B);
    if (arg === j) colsRight++;
  }
  // logits = s·î·t̂ᵀ: dî = s·G·t̂, dt̂ = s·Gᵀ·î, ds = Σ G ⊙ cos, dθ = s·ds below the cap.
  const dUnitImage = new Float64Array(B * E);
  const dUnitText = new Float64Array(B * E);
  let ds = 0;
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) {
    const g = G[i * B + j]!;
    ds += g * cos[i * B + j]!;
    for (let e = 0; e < E; e++) {
      dUnitImage[i * E + e]! += scale * g * t.unit[j * E + e]!;
      dUnitText[j * E + e]! += scale * g * im.unit[i * E + e]!;
    }
  }
  return {
    loss,
    scale,
    imageToTextAccuracy: rowsRight / B,
    textToImageAccuracy: colsRight / B,
    dText: unnormalizeGrad(dUnitText, t.unit, t.norms, B, E),
    dImage: unnormalizeGrad(dUnitImage, im.unit, im.norms, B, E),
    dLogScale: capped ? 0 : scale * ds,
  };
}

/** Backward of u = x/|x| per row: dx = (du − u·(u·du))/|x|. */
function unnormalizeGrad(du: Float64Array, u: Float64Array, norms: Float64Array, B: number, E: number): Float32Array {
  const dx = new Float32Array(B * E);
  for (let b = 0; b < B; b++) {
    let dot = 0;
    for (let e = 0; e < E; e++) dot += u[b * E + e]! * du[b * E + e]!;
    for (let e = 0; e < E; e++) dx[b * E + e] = (du[b * E + e]! - u[b * E + e]! * dot) / norms[b]!;
  }
  return dx;
}
