/**
 * The dVAE's pixel space: x ∈ [0, 1] is mapped to (1 − 2ε)·x + ε with ε = 0.1, keeping the logit-Laplace
 * likelihood away from logit(0) and logit(1); the decoder's μ maps back through sigmoid and the inverse map.
 */
export const LOGIT_LAPLACE_EPS = 0.1;

/** uint8 HWC pixels → mapped floats in [ε, 1 − ε]. */
export function mapPixels(images: Uint8Array, eps = LOGIT_LAPLACE_EPS): Float32Array {
  const out = new Float32Array(images.length);
  const scale = (1 - 2 * eps) / 255;
  for (let i = 0; i < images.length; i++) out[i] = images[i]! * scale + eps;
  return out;
}

/**
 * The decoder output [B, H, W, 6] (μ in channels 0–2, ln b in 3–5) → uint8 [B, H, W, 3]:
 * round(255 · clamp((sigmoid(μ) − ε)/(1 − 2ε), 0, 1)). ln b is not needed to show an image.
 */
export function decoderOutputToPixels(out: Float32Array, eps = LOGIT_LAPLACE_EPS): Uint8Array {
  const pixels = new Uint8Array((out.length / 6) * 3);
  const inv = 1 / (1 - 2 * eps);
  for (let p = 0, q = 0; q < pixels.length; p += 6, q += 3) {
    for (let c = 0; c < 3; c++) {
      const s = 1 / (1 + Math.exp(-out[p + c]!));
      const v = Math.min(1, Math.max(0, (s - eps) * inv));
      pixels[q + c] = Math.round(v * 255);
    }
  }
  return pixels;
}
