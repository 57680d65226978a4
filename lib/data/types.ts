/**
 * The data contract shared by every source (shapes world, emoji, folder, JSONL, WebDataset) and the
 * loader that batches them off the main thread.
 */

/** An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC): data.length = width·height·3. */
export interface ImageRGB {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One image–caption pair as a source yields it (before preprocessing). */
export interface Example {
  /** Stable identifier (file path, tar key, scene id): used in skip reports and for splits. */
  key: string;
  image: ImageRGB;
  caption: string;
}

/** Inputs a source could not use: skipped and counted, never fatal. */
export interface SkipReport {
  skipped: number;
  /** Count per reason, e.g. { 'corrupt image': 2, 'empty caption': 1 }. */
  reasons: Record<string, number>;
  /** The first few skipped keys with their reason, for the user to look at. */
  samples: Array<{ key: string; reason: string }>;
}

/** A batch ready for a model: B square images of side `size`, packed [B, size, size, 3] uint8. */
export interface Batch {
  size: number;
  images: Uint8Array;
  captions: string[];
  keys: string[];
}

export type Split = 'train' | 'test';
