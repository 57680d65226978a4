/**
 * Small valid files, built byte for byte in JS so that every run on every machine makes the same bytes: the seed
 * corpus (scripts/fuzz/make-corpus.ts) and the fixtures some targets write beside their input (the images a JSONL
 * line may name, the weights a manifest may name). Deflate data is written as stored blocks, because zlib's
 * compressed output differs between zlib builds; the readers' own logic, not zlib's, is what is fuzzed.
 */
import { crc32 } from 'node:zlib';

import jpeg from 'jpeg-js';

import { serialize, type SafeTensor } from '../../../lib/formats/safetensors.js';
import { f32ToBf16 } from '../../../lib/formats/half.js';
import { clipParamSpecs, type ClipConfig } from '../../../lib/models/clip/model.js';
import type { DvaeConfig } from '../../../lib/models/dvae/config.js';
import { dvaeParamSpecs } from '../../../lib/models/dvae/model.js';
import type { TransformerConfig } from '../../../lib/models/transformer/config.js';
import { transformerParamSpecs } from '../../../lib/models/transformer/config.js';
import { CLIP_FORMAT, DVAE_FORMAT, TRANSFORMER_FORMAT } from '../../../lib/models/weights.js';
import { mulberry32 } from '../../../lib/rng.js';
import type { BpeTokenizer } from '../../../lib/tokenizer/bpe.js';
import { toHfJson } from '../../../lib/tokenizer/formats.js';
import { trainBpe } from '../../../lib/tokenizer/train.js';

// --- zlib and PNG ---

/** A zlib stream of stored (uncompressed) deflate blocks; `raw` leaves out the zlib header and Adler-32 (for zip). */
export function deflateStored(data: Uint8Array, options: { raw?: boolean } = {}): Buffer {
  const parts: Buffer[] = options.raw ? [] : [Buffer.from([0x78, 0x01])];
  let at = 0;
  do {
    const n = Math.min(0xffff, data.length - at);
    const head = Buffer.alloc(5);
    head[0] = at + n >= data.length ? 1 : 0;
    head.writeUInt16LE(n, 1);
    head.writeUInt16LE(~n & 0xffff, 3);
    parts.push(head, Buffer.from(data.subarray(at, at + n)));
    at += n;
  } while (at < data.length);
  if (!options.raw) {
    let a = 1;
    let b = 0;
    for (const byte of data) {
      a = (a + byte) % 65521;
      b = (b + a) % 65521;
    }
    const adler = Buffer.alloc(4);
    adler.writeUInt32BE(((b << 16) | a) >>> 0);
    parts.push(adler);
  }
  return Buffer.concat(parts);
}

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export type PngColorType = 0 | 2 | 3 | 4 | 6;
const CHANNELS: Record<PngColorType, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export function pngIhdr(width: number, height: number, colorType: PngColorType = 2, bitDepth = 8, interlace = false): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width >>> 0, 0);
  ihdr.writeUInt32BE(height >>> 0, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  ihdr[12] = interlace ? 1 : 0;
  return pngChunk('IHDR', ihdr);
}

export interface PngSpec {
  width: number;
  height: number;
  colorType: PngColorType;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  interlace?: boolean;
  /** Sample c of pixel (x, y), below 2^bitDepth (a palette index for colour type 3). */
  sample(x: number, y: number, c: number): number;
  /** Chunks between IHDR and IDAT (PLTE, tRNS, gAMA, ...). */
  extra?: Array<{ type: string; data: Uint8Array }>;
  /** The IDAT data split into this many chunks. */
  idatChunks?: number;
}

/** One row's samples packed as the format wants them: MSB first below 8 bits, big-endian at 16. */
function packRow(spec: PngSpec, xs: number[], y: number): Buffer {
  const channels = CHANNELS[spec.colorType];
  const bits = xs.length * channels * spec.bitDepth;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let bit = 0;
  for (const x of xs) {
    for (let c = 0; c < channels; c++) {
      const v = spec.sample(x, y, c) & ((1 << spec.bitDepth) - 1);
      if (spec.bitDepth === 16) out.writeUInt16BE(v, bit / 8);
      else if (spec.bitDepth === 8) out[bit / 8] = v;
      else out[bit >> 3]! |= v << (8 - spec.bitDepth - (bit & 7));
      bit += spec.bitDepth;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The row with its filter byte; each row uses filter type (row index mod 5), so every filter gets exercised. */
function filterRow(row: Buffer, previous: Buffer | null, type: number, bpp: number): Buffer {
  const out = Buffer.alloc(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const left = i >= bpp ? row[i - bpp]! : 0;
    const up = previous ? previous[i]! : 0;
    const upLeft = previous && i >= bpp ? previous[i - bpp]! : 0;
    const predicted = [0, left, up, (left + up) >> 1, paeth(left, up, upLeft)][type]!;
    out[i + 1] = (row[i]! - predicted) & 0xff;
  }
  return out;
}

const ADAM7: Array<[x0: number, y0: number, dx: number, dy: number]> = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2],
];

/** A PNG of any colour type, bit depth and interlacing, with every filter type in use. */
export function pngFile(spec: PngSpec): Buffer {
  const bpp = Math.max(1, (CHANNELS[spec.colorType] * spec.bitDepth) / 8);
  const passes = spec.interlace ? ADAM7 : [[0, 0, 1, 1] as [number, number, number, number]];
  const rows: Buffer[] = [];
  let rowIndex = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < spec.width; x += dx) xs.push(x);
    if (xs.length === 0) continue;
    let previous: Buffer | null = null;
    for (let y = y0; y < spec.height; y += dy) {
      const row = packRow(spec, xs, y);
      rows.push(filterRow(row, previous, rowIndex++ % 5, Math.ceil(bpp)));
      previous = row;
    }
  }
  const idat = deflateStored(Buffer.concat(rows));
  const pieces = Math.max(1, spec.idatChunks ?? 1);
  const step = Math.ceil(idat.length / pieces);
  const idats: Buffer[] = [];
  for (let at = 0; at < idat.length; at += step) idats.push(pngChunk('IDAT', idat.subarray(at, at + step)));
  return Buffer.concat([
    PNG_SIGNATURE,
    pngIhdr(spec.width, spec.height, spec.colorType, spec.bitDepth, spec.interlace),
    ...(spec.extra ?? []).map((c) => pngChunk(c.type, c.data)),
    ...idats,
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** An 8-bit RGB PNG of a smooth pattern. */
export function rgbPng(width: number, height: number, seed = 1): Buffer {
  return pngFile({ width, height, colorType: 2, bitDepth: 8, sample: (x, y, c) => (x * 40 + y * 70 + c * 90 + seed * 17) & 255 });
}

/** A baseline JPEG of a smooth pattern (jpeg-js, pure JS: the same bytes everywhere). */
export function jpegFile(width: number, height: number, seed = 1, quality = 90): Buffer {
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      rgba.set([(x * 9 + seed * 17) & 255, (y * 13 + seed * 29) & 255, ((x + y) * 5 + seed) & 255, 255], (y * width + x) * 4);
    }
  }
  return jpeg.encode({ width, height, data: rgba }, quality).data;
}

/** A JPEG whose start-of-frame declares width x height over a tiny real image. */
export function jpegDeclaring(width: number, height: number): Buffer {
  const jpg = Buffer.from(jpegFile(16, 16, 4));
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  jpg.writeUInt16BE(height, sof + 5);
  jpg.writeUInt16BE(width, sof + 7);
  return jpg;
}

/** A PNG whose IHDR declares width x height (CRCs valid) with an empty image stream. */
export function pngDeclaring(width: number, height: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, pngIhdr(width, height), pngChunk('IDAT', deflateStored(new Uint8Array(0))), pngChunk('IEND', new Uint8Array(0))]);
}

// --- tokenizer ---

const TOKENIZER_CORPUS = ['a red cube', 'a blue cube', 'a red sphere', 'two red cubes', 'a green sphere on a red cube'];

/** A byte-level BPE trained by the project on a few captions: the 256 byte tokens and a handful of merges. */
export function tinyTokenizer(): BpeTokenizer {
  return trainBpe(TOKENIZER_CORPUS, { vocabSize: 272 });
}

/** tokenizer.json without the indentation (the reader does not care about layout; the corpus stays small). */
export function compactHfJson(tok: BpeTokenizer): string {
  return JSON.stringify(JSON.parse(toHfJson(tok)));
}

// --- weights ---

export const TINY_DVAE: DvaeConfig = { imageSize: 2, nHid: 4, groupCount: 1, blocksPerGroup: 1, vocabSize: 2, nInit: 4 };

export function tinyTransformerConfig(textVocab = 1): TransformerConfig {
  return { layers: 1, width: 4, heads: 1, textLen: 1, textVocab, imageVocab: TINY_DVAE.vocabSize, grid: TINY_DVAE.imageSize };
}

export function tinyClipConfig(textVocab = 1): ClipConfig {
  return {
    textLen: 1, textVocab, textLayers: 1, textWidth: 4, textHeads: 1, imageSize: TINY_DVAE.imageSize, imageEncoder: 'vit',
    imageWidth: 4, imagePatch: 2, imageLayers: 1, imageHeads: 1, embedDim: 2,
  };
}

export type WeightDType = 'F32' | 'BF16';

function randomTensor(shape: readonly number[], random: () => number, dtype: WeightDType): SafeTensor {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = Math.round((random() - 0.5) * 64) / 256;
  return dtype === 'F32' ? { dtype, shape: [...shape], data: values } : { dtype, shape: [...shape], data: f32ToBf16(values) };
}

/** A dVAE file as saveDvae writes it (conv weights OIHW), with seeded values. */
export function dvaeFile(config: DvaeConfig = TINY_DVAE, options: { dtype?: WeightDType; seed?: number; metadata?: Record<string, string> } = {}): Buffer {
  const random = mulberry32(options.seed ?? 1);
  const tensors = new Map<string, SafeTensor>();
  for (const spec of dvaeParamSpecs(config)) {
    const s = spec.shape;
    const shape = s.length === 4 ? [s[3]!, s[2]!, s[0]!, s[1]!] : s;
    tensors.set(spec.name, randomTensor(shape, random, options.dtype ?? 'BF16'));
  }
  return serialize(tensors, options.metadata ?? { format: DVAE_FORMAT, config: JSON.stringify(config) });
}

/** A transformer file as saveTransformer writes it, optionally carrying a tokenizer.json in its metadata. */
export function transformerFile(
  config: TransformerConfig = tinyTransformerConfig(),
  options: { dtype?: WeightDType; seed?: number; tokenizer?: string; metadata?: Record<string, string> } = {},
): Buffer {
  const random = mulberry32(options.seed ?? 2);
  const tensors = new Map<string, SafeTensor>();
  for (const spec of transformerParamSpecs(config)) tensors.set(spec.name, randomTensor(spec.shape, random, options.dtype ?? 'BF16'));
  const metadata: Record<string, string> = { format: TRANSFORMER_FORMAT, config: JSON.stringify(config) };
  if (options.tokenizer !== undefined) metadata.tokenizer = options.tokenizer;
  return serialize(tensors, options.metadata ?? metadata);
}

/** A CLIP file as saveClip writes it, optionally carrying a tokenizer.json in its metadata. */
export function clipFile(
  config: ClipConfig = tinyClipConfig(),
  options: { dtype?: WeightDType; seed?: number; tokenizer?: string; metadata?: Record<string, string> } = {},
): Buffer {
  const random = mulberry32(options.seed ?? 3);
  const tensors = new Map<string, SafeTensor>();
  for (const spec of clipParamSpecs(config)) tensors.set(spec.name, randomTensor(spec.shape, random, options.dtype ?? 'BF16'));
  const metadata: Record<string, string> = { format: CLIP_FORMAT, config: JSON.stringify(config) };
  if (options.tokenizer !== undefined) metadata.tokenizer = options.tokenizer;
  return serialize(tensors, options.metadata ?? metadata);
}
