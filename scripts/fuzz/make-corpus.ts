/**
 * Writes the fuzzers' seed corpus (test/fuzz/corpus/<target>/) and the regression inputs (test/fuzz/regressions/
 * <target>/) from code, so that every byte in them has a reason written down here:
 *
 *   node --import tsx scripts/fuzz/make-corpus.ts            writes them (only its own files; others are left alone)
 *   node --import tsx scripts/fuzz/make-corpus.ts --check    exits 1 when a file on disk differs from what it makes
 *
 * The output is the same on every run and machine: no clocks, no randomness but seeded PRNGs, no zlib compression
 * (stored deflate blocks), no native encoder (the sharp-made JPEGs are kept below as bytes).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ZipArchive } from '../../lib/formats/zip.js';
import { serialize, type SafeTensor } from '../../lib/formats/safetensors.js';
import { MODEL_FORMAT } from '../../lib/api/model-files.js';
import { dvaeParamSpecs } from '../../lib/models/dvae/model.js';
import { CHECKPOINT_FORMAT } from '../../lib/train/checkpoint.js';
import { DVAE_FORMAT } from '../../lib/models/weights.js';
import { toHfJson } from '../../lib/tokenizer/formats.js';
import {
  clipFile, compactHfJson, deflateStored, dvaeFile, jpegDeclaring, jpegFile, PNG_SIGNATURE, pngChunk, pngDeclaring, pngFile, pngIhdr,
  rgbPng, TINY_DVAE, tinyClipConfig, tinyTokenizer, tinyTransformerConfig, transformerFile,
} from '../../test/fuzz/targets/_samples.js';
import { op, paxRecord, pickle, stateDictPickle, tarFile, tensorParts, torchArchive, type TensorRef, writeZip } from './builders.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const FIXTURES = join(ROOT, 'test', 'fuzz');
const TORCH_FIXTURES = join(ROOT, 'test', 'fixtures', 'torch');

type Files = Record<string, Uint8Array | string>;
const corpus: Record<string, Files> = {};
const regressions: Record<string, Files> = {};

const floats = (...values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);
const json = (value: unknown): string => `${JSON.stringify(value)}\n`;

// --- png ---

const pattern = (x: number, y: number, c: number): number => x * 37 + y * 91 + c * 53;
const palette = (n: number): Uint8Array => Buffer.from(Array.from({ length: n * 3 }, (_, i) => (i * 29) & 255));
corpus.png = {
  'grey-1bit-9x3.png': pngFile({ width: 9, height: 3, colorType: 0, bitDepth: 1, sample: (x, y) => (x + y) & 1 }),
  'grey-16bit-3x2.png': pngFile({ width: 3, height: 2, colorType: 0, bitDepth: 16, sample: (x, y) => pattern(x, y, 0) * 251 }),
  'rgb-8bit-5x5-every-filter.png': pngFile({ width: 5, height: 5, colorType: 2, bitDepth: 8, sample: pattern }),
  'palette-4bit-trns-5x3.png': pngFile({
    width: 5, height: 3, colorType: 3, bitDepth: 4, sample: (x, y) => (x + 3 * y) % 16,
    extra: [{ type: 'PLTE', data: palette(16) }, { type: 'tRNS', data: Buffer.from([0, 128, 255, 64]) }],
  }),
  'grey-alpha-8bit-3x2.png': pngFile({ width: 3, height: 2, colorType: 4, bitDepth: 8, sample: (x, y, c) => (c === 1 ? x * 120 : pattern(x, y, c)) }),
  'rgba-16bit-3x2.png': pngFile({ width: 3, height: 2, colorType: 6, bitDepth: 16, sample: (x, y, c) => (c === 3 ? 65535 - x * 9000 : pattern(x, y, c) * 257) }),
  'rgb-8bit-9x9-interlaced-gama-text-3-idats.png': pngFile({
    width: 9, height: 9, colorType: 2, bitDepth: 8, interlace: true, sample: pattern, idatChunks: 3,
    extra: [{ type: 'gAMA', data: Buffer.from([0, 0, 0xb1, 0x8f]) }, { type: 'tEXt', data: Buffer.from('Comment\0fuzz seed', 'latin1') }],
  }),
  'palette-2bit-interlaced-7x7.png': pngFile({
    width: 7, height: 7, colorType: 3, bitDepth: 2, interlace: true, sample: (x, y) => (x * y) & 3, extra: [{ type: 'PLTE', data: palette(4) }],
  }),
};

/** Two IHDR chunks: the header check reads the first, pngjs decodes with the second. */
function pngWithSecondIhdr(width: number, height: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, pngIhdr(2, 2), pngIhdr(width, height), pngChunk('IDAT', deflateStored(new Uint8Array(14))), pngChunk('IEND', new Uint8Array(0))]);
}

regressions.png = {
  // SIGABRT in zlib through pngjs before IMAGE_LIMITS (68 bytes: an empty image stream).
  'ihdr-2147483647x2147483647.png': pngDeclaring(0x7fffffff, 0x7fffffff),
  'ihdr-12000x12000.png': pngDeclaring(12000, 12000),
  // Found by this fuzzing work, open: the limits are checked on the first IHDR, pngjs uses the last one (SIGABRT).
  'second-ihdr-2147483647x2147483647.png': pngWithSecondIhdr(0x7fffffff, 0x7fffffff),
  // Open: as above, refused only after decoding (2 s, 1.5 GB).
  'second-ihdr-12000x12000.png': pngWithSecondIhdr(12000, 12000),
  // Open: within the limits, an empty image stream "decodes" to 8192x8192 black pixels (1.4 s, ~900 MB).
  'ihdr-8192x8192-empty-idat.png': pngDeclaring(8192, 8192),
};

// --- jpeg ---

/** Made once with sharp 0.35 (libjpeg-turbo/mozjpeg), which jpeg-js cannot write; kept as bytes for determinism. */
const SHARP_JPEGS: Record<string, string> = {
  'progressive-420-16x16.jpg': '/9j/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wgARCAAQABADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABQb/xAAUAQEAAAAAAAAAAAAAAAAAAAAB/9oADAMBAAIQAxAAAAGZWRWT/8QAFRABAQAAAAAAAAAAAAAAAAAAAwD/2gAIAQEAAQUCMIwjCML/xAAVEQEBAAAAAAAAAAAAAAAAAAAEAP/aAAgBAwEBPwELr//EABURAQEAAAAAAAAAAAAAAAAAAAIA/9oACAECAQE/AQr/xAAUEAEAAAAAAAAAAAAAAAAAAAAg/9oACAEBAAY/Ah//xAAVEAEBAAAAAAAAAAAAAAAAAAAAYf/aAAgBAQABPyGKKKL/2gAMAwEAAgADAAAAEK//xAAWEQADAAAAAAAAAAAAAAAAAAAAITH/2gAIAQMBAT8Qgz//xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oACAECAQE/EB//xAAVEAEBAAAAAAAAAAAAAAAAAAAAMf/aAAgBAQABPxCDBgwf/9k=',
  'grey-16x16.jpg': '/9j/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCAAQABADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAABgUH/8QAHxAAAQIGAwAAAAAAAAAAAAAAAgABAwQFBhGhISIy/8QAFAEBAAAAAAAAAAAAAAAAAAAAAP/EABQRAQAAAAAAAAAAAAAAAAAAAAD/2gAMAwEAAhEDEQA/AM4krfKETYFLqVTTBx4TOHbGH8aVWTt1xdumkH//2Q==',
  'cmyk-8x8.jpg': '/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwAIBgYHBgUIBwcHCQkICgwUDQwLCwwZEhMPFB0aHx4dGhwcICQuJyAiLCMcHCg3KSwwMTQ0NB8nOT04MjwuMzQy/8AAFAgACAAIBEMRAE0RAFkRAEsRAP/EABQAAQAAAAAAAAAAAAAAAAAAAAb/xAAnEAABAgQFAwUAAAAAAAAAAAABAgMEBRExAAYHIUESE1EUJGFx0f/aAA4EQwBNAFkASwAAPwBdp7OZlEy5qEmTj3rGqDuOVq8kbbnlVBfn7woz/o3Kp/FPTiWshiOdV1voRsl1XKqW6jz5ve67SSIZiJCwxFNe7bSAHlbl0fJ8imGeT9PXsmTYEEPwS7EGvbP5j//Z',
  'optimised-huffman-444-16x16.jpg': '/9j/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAQABADAREAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABQb/xAAYEAACAwAAAAAAAAAAAAAAAAAABAUiMf/EABkBAAIDAQAAAAAAAAAAAAAAAAMFAAEEBv/EABcRAAMBAAAAAAAAAAAAAAAAAAABBAL/2gAMAwEAAhEDEQA/AJFSNypeWSakaUjcqHyx/NSLKRuVMmWcBNSNKRuVDZY/mpP/2Q==',
};

corpus.jpeg = {
  'baseline-8x8-q90.jpg': jpegFile(8, 8, 1, 90),
  'baseline-17x9-q50.jpg': jpegFile(17, 9, 2, 50),
  'baseline-16x16-q100.jpg': jpegFile(16, 16, 3, 100),
  ...Object.fromEntries(Object.entries(SHARP_JPEGS).map(([name, b64]) => [name, Buffer.from(b64, 'base64')])),
};

/** A JPEG whose DRI segment's length field lies: jpeg-js reads four bytes after the marker, declaredSize skips `length`. */
function jpegWithLyingDri(width: number, height: number): Buffer {
  const jpg = jpegDeclaring(width, height);
  const dri = Buffer.from([0xff, 0xdd, 0, 0, 0, 0]);
  const out = Buffer.concat([jpg.subarray(0, 2), dri, jpg.subarray(2)]);
  // From the DRI at byte 2, declaredSize jumps to 4 + length: make that the start-of-scan, where it gives up.
  const sos = out.findIndex((b, i) => b === 0xff && out[i + 1] === 0xda);
  out.writeUInt16BE(sos - 4, 4);
  return out;
}

/** A JPEG whose first DQT says it is one byte shorter than its table: jpeg-js reads the whole table, declaredSize trusts the length. */
function jpegWithShortDqtLength(width: number, height: number): Buffer {
  const jpg = jpegDeclaring(width, height);
  const dqt = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xdb);
  jpg.writeUInt16BE(jpg.readUInt16BE(dqt + 2) - 1, dqt + 2);
  return jpg;
}

/** A ~2 KB JPEG whose start-of-frame declares width x height. */
function bigJpegDeclaring(width: number, height: number): Buffer {
  const jpg = Buffer.from(jpegFile(32, 32, 5, 95));
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  jpg.writeUInt16BE(height, sof + 5);
  jpg.writeUInt16BE(width, sof + 7);
  return jpg;
}

regressions.jpeg = {
  // 44 s and 2.4 GB in jpeg-js before IMAGE_LIMITS.
  'sof-9000x9000.jpg': bigJpegDeclaring(9000, 9000),
  // Found by this fuzzing work, open: the same 9000x9000 frame behind a DRI whose length hides it from declaredSize.
  'dri-length-hides-sof-9000x9000.jpg': jpegWithLyingDri(9000, 9000),
  // Open, same defect: any segment whose length field disagrees with what jpeg-js reads (here a DQT) hides the frame.
  'dqt-length-short-by-one-hides-sof-9000x9000.jpg': jpegWithShortDqtLength(9000, 9000),
  // Open: within the limits, a 2 KB file costs ~9 s and ~1.9 GB before jpeg-js finds the data missing.
  'sof-8192x8192.jpg': bigJpegDeclaring(8192, 8192),
};

// --- safetensors ---

const tokenizer = tinyTokenizer();
const tokenizerJson = compactHfJson(tokenizer);

function tensorsOfEveryDtype(): Map<string, SafeTensor> {
  return new Map<string, SafeTensor>([
    ['f32', { dtype: 'F32', shape: [2, 3], data: new Float32Array([0, 1, -1, 0.5, Infinity, -0]) }],
    ['f16', { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0x7c00, 0x0001]) }],
    ['bf16', { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xff80]) }],
    ['f64', { dtype: 'F64', shape: [1], data: new Float64Array([Math.PI]) }],
    ['i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-1n, 9007199254740993n]) }],
    ['u8', { dtype: 'U8', shape: [2, 2], data: new Uint8Array([0, 1, 254, 255]) }],
    ['bool', { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) }],
    ['i32', { dtype: 'I32', shape: [1, 1, 1], data: new Int32Array([-7]) }],
    ['f8', { dtype: 'F8_E4M3', shape: [2], data: new Uint8Array([0x38, 0xff]) }],
  ]);
}

/** A training checkpoint's layout: `param.`-prefixed tensors in the arena's own (HWIO) conv layout. */
function dvaeCheckpoint(): Buffer {
  const tensors = new Map<string, SafeTensor>();
  for (const spec of dvaeParamSpecs(TINY_DVAE)) {
    tensors.set(`param.${spec.name}`, { dtype: 'F32', shape: [...spec.shape], data: new Float32Array(spec.shape.reduce((a, b) => a * b, 1)).fill(0.125) });
  }
  return serialize(tensors, { format: CHECKPOINT_FORMAT, task: 'dvae', config: JSON.stringify(TINY_DVAE) });
}

corpus.safetensors = {
  'every-dtype-with-metadata.safetensors': serialize(tensorsOfEveryDtype(), { format: 'pt', note: 'fuzz seed ✓' }),
  'scalar-and-empty.safetensors': serialize(new Map<string, SafeTensor>([
    ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([2]) }],
    ['empty', { dtype: 'F16', shape: [0, 3], data: new Uint16Array(0) }],
  ])),
  'dvae-tiny-bf16.safetensors': dvaeFile(),
  'dvae-tiny-f32-config-inferred.safetensors': dvaeFile(TINY_DVAE, { dtype: 'F32', metadata: { format: DVAE_FORMAT } }),
  'dvae-tiny-checkpoint.safetensors': dvaeCheckpoint(),
  'transformer-tiny.safetensors': transformerFile(),
  'transformer-tiny-with-tokenizer.safetensors': transformerFile(tinyTransformerConfig(tokenizer.vocabSize), { tokenizer: tokenizerJson }),
  'clip-tiny-vit.safetensors': clipFile(),
};

/** A copy of a weights file whose config metadata is `edit(config)`: the defects were in trusting that text. */
function withConfig(file: Buffer, edit: (config: Record<string, unknown>) => Record<string, unknown>): Buffer {
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as { __metadata__: Record<string, string> };
  const metadata = header.__metadata__;
  metadata.config = JSON.stringify(edit(JSON.parse(metadata.config!) as Record<string, unknown>));
  const text = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(text.length / 8) * 8, 0x20);
  text.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([prefix, padded, file.subarray(8 + headerLength)]);
}

/** A header whose tensor's shape is an array nested `depth` deep: JSON.stringify of it in an error overflowed the stack. */
function nestedShapeHeader(depth: number): Buffer {
  const text = Buffer.from(`{"x":{"dtype":"F32","shape":${'['.repeat(depth)}${']'.repeat(depth)},"data_offsets":[0,0]}}`);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([prefix, text]);
}

regressions.safetensors = {
  // Each hung or grew past gigabytes: the loaders built the model from the metadata before comparing it with the tensors.
  'dvae-blocks-per-group-65536.safetensors': withConfig(dvaeFile(), (c) => ({ ...c, blocksPerGroup: 65536 })),
  'transformer-layers-1e9.safetensors': withConfig(transformerFile(), (c) => ({ ...c, layers: 1e9 })),
  'clip-text-layers-1e9.safetensors': withConfig(clipFile(), (c) => ({ ...c, textLayers: 1e9 })),
  'clip-text-layers-65536.safetensors': withConfig(clipFile(), (c) => ({ ...c, textLayers: 65536 })),
  // A RangeError (stack overflow) from the error message, not a DalleError.
  'shape-nested-10000-deep.safetensors': nestedShapeHeader(10000),
};

// --- torch ---

const torchFixture = (name: string): Buffer => readFileSync(join(TORCH_FIXTURES, name));
const f16 = (bits: number[]): Buffer => Buffer.from(new Uint16Array(bits).buffer);

/** f32, f16 and bf16 tensors, a transposed and an expanded view, a parameter, and an i64 buffer. */
function mixedViewsArchive(options: { deflate?: boolean; zip64?: boolean; dataDescriptor?: boolean } = {}): Buffer {
  const f32 = (shape: number[], strides: number[], extra: Partial<TensorRef> = {}): TensorRef => ({ storage: 'FloatStorage', key: '0', numel: 6, shape, strides, ...extra });
  return torchArchive(
    stateDictPickle([
      ['w', f32([2, 3], [3, 1])],
      ['w_t', f32([3, 2], [1, 3])],
      ['row', f32([2], [1], { offset: 4, parameter: true })],
      ['expanded', f32([4, 3], [0, 1])],
      ['h', { storage: 'HalfStorage', key: '1', numel: 2, shape: [2], strides: [1] }],
      ['b', { storage: 'BFloat16Storage', key: '2', numel: 2, shape: [1, 2], strides: [2, 1] }],
      ['steps', { storage: 'LongStorage', key: '3', numel: 1, shape: [], strides: [] }],
    ]),
    { 0: floats(1, 2, 3, 4, 5, 6), 1: f16([0x3c00, 0xc000]), 2: f16([0x3f80, 0x4000]), 3: Buffer.from(new BigInt64Array([7n]).buffer) },
    options,
  );
}

/** A pickled nn.Module tree (dall_e.encoder.Encoder holding a Conv2d), as torch.save(model) writes it. */
function moduleTreeArchive(): Buffer {
  const module = (cls: string, name: string, parameters: Array<[string, TensorRef]>, children: Array<[string, number]>): Parameters<typeof pickle> => [
    op.global(cls, name), op.emptyTuple, op.newobj,
    op.emptyDict,
    op.str('training'), op.newFalse, op.setitem,
    op.str('_parameters'), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    ...parameters.flatMap(([n, t]) => [op.str(n), ...tensorParts({ ...t, parameter: true }), op.setitem]), op.setitem,
    op.str('_buffers'), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.setitem,
    op.str('_non_persistent_buffers_set'), op.global('builtins', 'set'), op.emptyList, op.tuple1, op.reduce, op.setitem,
    op.str('_modules'), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    ...children.flatMap(([n, memo]) => [op.str(n), op.binget(memo), op.setitem]), op.setitem,
    op.build,
  ];
  const conv = { storage: 'FloatStorage', key: '0', numel: 4, shape: [1, 1, 2, 2], strides: [4, 4, 2, 1] };
  return torchArchive(
    pickle(
      op.proto(2),
      ...module('torch.nn.modules.conv', 'Conv2d', [['weight', conv], ['bias', { storage: 'FloatStorage', key: '1', numel: 1, shape: [1], strides: [1] }]], []),
      op.binput(1), op.pop,
      ...module('dall_e.encoder', 'Encoder', [], [['conv', 1], ['missing', 1]]),
      op.stop,
    ),
    { 0: floats(1, 2, 3, 4), 1: floats(0.5) },
    { dataDescriptor: true, root: 'encoder' },
  );
}

corpus.torch = {
  'state-dict-views-and-dtypes.pt': mixedViewsArchive(),
  'state-dict-deflated-zip64.pt': mixedViewsArchive({ deflate: true, zip64: true }),
  'module-tree-data-descriptors.pt': moduleTreeArchive(),
  'fixture-half-module.pt': torchFixture('half_module.pkl'),
  'fixture-mixed-state-dict.pt': torchFixture('mixed_state_dict.pkl'),
  'fixture-protocol4.pt': torchFixture('protocol4.pkl'),
  'fixture-legacy.pt': torchFixture('legacy_tiny.pkl'),
};

/** One storage element, viewed as a huge stride-0 tensor under `names` names (the memo shares one tensor). */
function repeatedView(shape: number[], names: number): Buffer {
  const view: TensorRef = { storage: 'FloatStorage', key: '0', numel: 1, shape, strides: shape.map(() => 0) };
  const more = Array.from({ length: names - 1 }, (_, i) => [op.shortStr(`w${i + 1}`), op.binget(1), op.setitem]).flat();
  return torchArchive(
    pickle(op.proto(2), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.shortStr('w0'), ...tensorParts(view), op.binput(1), op.setitem, ...more, op.stop),
    { 0: floats(1) },
  );
}

regressions.torch = {
  // toFloat32 allocated 2^30 floats (4 GB) for one stored element before views past 2^24 repeated elements were refused.
  'view-repeats-one-element-32768x32768.pt': repeatedView([32768, 32768], 1),
  // Found by this fuzzing work, open: each name may repeat 2^24 elements, and loadOpenAIDvae widens and keeps every
  // one before comparing names: 10 names in 709 bytes cost ~3.4 s and 1.4 GB (each further name ~64 MB more).
  'view-of-2pow24-repeated-under-10-names.pt': repeatedView([4096, 4096], 10),
};

// --- pickle ---

const dataPkl = (file: Buffer): Buffer => {
  const zip = new ZipArchive(file);
  return Buffer.from(zip.read(zip.names().find((n) => n.endsWith('/data.pkl'))!));
};

corpus.pickle = {
  'torch-state-dict-protocol2.pkl': dataPkl(torchFixture('mixed_state_dict.pkl')),
  'torch-protocol4.pkl': dataPkl(torchFixture('protocol4.pkl')),
  'torch-module-tree.pkl': dataPkl(moduleTreeArchive()),
  // Protocol 0: every value as text lines.
  'protocol0-text-opcodes.pkl': pickle(
    '(lp0\nI42\naI01\naL12345678901234567890L\naF-1.5e-3\naF+nan\na(dp1\nI1\nI2\nsag0\nac__main__\nX\np2\n(tp3\nRa.',
  ),
  // Protocol 4: framing, memoize, sets, every width of int, float, bytes and string, STACK_GLOBAL, NEWOBJ_EX, BUILD, persistent ids.
  'protocol4-every-opcode.pkl': (() => {
    const body = pickle(
      op.emptyList, op.memoize, op.mark,
      op.none, op.newTrue, op.newFalse, op.int(-2), op.int1(255), op.int2(65535), op.long1([0xff, 0x7f]), op.long4([1, 0, 0, 0, 0, 0, 0, 0x80]),
      op.float(2.5), op.shortBytes(Buffer.from([0, 255])), op.bytes(Buffer.from('b')), op.bytes8(Buffer.from('c')), op.bytearray8(Buffer.from('d')),
      op.shortStr('é'), op.str('ü'), op.str8('🙂'),
      op.emptySet, op.mark, op.int1(1), op.int1(2), op.additems, op.mark, op.int1(3), op.frozenset,
      op.int1(1), op.tuple1, op.int1(1), op.int1(2), op.tuple2, op.int1(1), op.int1(2), op.int1(3), op.tuple3,
      op.emptyDict, op.mark, op.shortStr('k'), op.longBinget(0), op.setitems,
      op.shortStr('mod.ule'), op.shortStr('Name'), op.stackGlobal, op.emptyTuple, op.emptyDict, op.newobjEx, op.emptyDict, op.build,
      op.shortStr('pid'), op.binpersid,
      op.mark, op.int1(9), op.popMark, op.int1(8), op.dup, op.pop, op.longBinput(7), op.binget(0), op.pop,
      op.appends,
      op.stop,
    );
    return pickle(op.proto(4), op.frame(body.length), body);
  })(),
};

// --- zip ---

const zipEntries = [
  { name: 'a.txt', data: Buffer.from('hello zip\n') },
  { name: 'folder/b.bin', data: Buffer.from([0, 1, 2, 3, 255]) },
  { name: 'empty', data: Buffer.alloc(0) },
];
corpus.zip = {
  'stored.zip': writeZip(zipEntries),
  'deflated.zip': writeZip(zipEntries, { deflate: true }),
  'zip64.zip': writeZip(zipEntries, { zip64: true }),
  'data-descriptors-and-comment.zip': writeZip(zipEntries, { dataDescriptor: true, comment: 'PK\u0005\u0006 inside a comment' }),
  'empty-archive.zip': writeZip([]),
  'torch-archive.zip': torchFixture('protocol4.pkl'),
};

// --- tokenizer-json ---

const bytesOnly = JSON.parse(toHfJson(tokenizer)) as { model: { vocab: Record<string, number>; merges: string[] }; normalizer: unknown };
const byteVocab = Object.fromEntries(Object.entries(bytesOnly.model.vocab).filter(([, id]) => id < 256));

corpus['tokenizer-json'] = {
  'trained-caption-normalizer.json': toHfJson(tokenizer),
  'trained-compact.json': tokenizerJson,
  'pairs-no-normalizer.json': JSON.stringify({
    ...bytesOnly, normalizer: null, decoder: null,
    model: { ...bytesOnly.model, merges: bytesOnly.model.merges.map((m) => m.split(' ')) },
  }),
  'bytes-only-no-merges.json': JSON.stringify({ ...bytesOnly, model: { ...bytesOnly.model, vocab: byteVocab, merges: [] } }),
  'with-byte-order-mark.json': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(tokenizerJson)]),
};

regressions['tokenizer-json'] = {
  // JSON.parse accepts it; showing the value in the error message overflowed the stack (a RangeError, not a DalleError).
  // 20000 levels: the overflow starts near 5000, and this keeps the file at 40 KB (the report named 100000).
  'dropout-nested-20000-deep.json': `{"model":{"type":"BPE","dropout":${'['.repeat(20000)}${']'.repeat(20000)}}}`,
  // A latin-1 token: read as UTF-8 it was silently U+FFFD; now refused as not UTF-8.
  'latin1-not-utf8.json': Buffer.from(tokenizerJson.replace('"model":{', '"model":{"comment":"caf\u00e9",'), 'latin1'),
};

// --- gpt2-vocab ---

const mergesText = `#version: 0.2\n${tokenizer.model.merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`;
const vocabJson = JSON.stringify(bytesOnly.model.vocab);
const gpt2 = (vocab: string, merges: string): Buffer => Buffer.concat([Buffer.from(vocab, 'utf8'), Buffer.from([0]), Buffer.from(merges, 'utf8')]);
corpus['gpt2-vocab'] = {
  'trained-vocab-and-merges': gpt2(vocabJson, mergesText),
  'crlf-merges-without-version': gpt2(vocabJson, tokenizer.model.merges.map(([a, b]) => `${a} ${b}\r\n`).join('')),
  'bytes-only-no-merges': gpt2(JSON.stringify(byteVocab), ''),
  'vocab-only-no-separator': Buffer.from(JSON.stringify(byteVocab), 'utf8'),
};

// --- manifest (the names are files the manifest target writes beside it) ---

const manifest = (fields: Record<string, unknown>): string => `${JSON.stringify({ format: MODEL_FORMAT, name: 'tiny', ...fields }, null, 2)}\n`;
corpus.manifest = {
  'full.model.json': manifest({ description: 'a tiny model ✓ 🙂', dvae: 'dvae.safetensors', transformer: 'transformer.safetensors', clip: 'clip.safetensors' }),
  'without-clip.model.json': manifest({ dvae: 'dvae.safetensors', transformer: 'transformer.safetensors' }),
  'clip-without-tokenizer.model.json': manifest({ dvae: 'dvae.safetensors', transformer: 'transformer.safetensors', clip: 'clip-no-tokenizer.safetensors' }),
  'transformer-without-tokenizer.model.json': manifest({ dvae: 'dvae.safetensors', transformer: 'transformer-no-tokenizer.safetensors' }),
  'grid-mismatch.model.json': manifest({ dvae: 'dvae-grid-4.safetensors', transformer: 'transformer.safetensors', clip: 'clip-4px.safetensors' }),
  'missing-file.model.json': manifest({ dvae: 'absent.safetensors', transformer: 'transformer.safetensors' }),
};

// --- webdataset ---

const tinyPng = rgbPng(3, 2);
corpus.webdataset = {
  'two-members.tar': tarFile([{ name: '000.png', data: tinyPng }, { name: '000.txt', data: 'a red cube' }]),
  'mixed-members.tar': tarFile([
    { name: 'train', data: '', type: '5' },
    { name: 'train/001.jpg', data: jpegFile(8, 8, 2) },
    { name: 'train/001.txt', data: ' a blue sphere \n' },
    { name: 'train/002.png', data: tinyPng },
    { name: 'train/003.png', data: tinyPng },
    { name: 'train/003.txt', data: '   ' },
    { name: '././@LongLink', data: `train/${'long'.repeat(30)}.png\0`, type: 'L' },
    { name: 'ignored', data: tinyPng },
    { name: 'train/pax', data: paxRecord('path', 'train/pax.name.txt'), type: 'x' },
    { name: 'ignored', data: 'caption for a missing image' },
  ]),
  'ustar-prefix-no-end-blocks.tar': tarFile([{ name: '004.png', data: tinyPng, prefix: 'shard/nested' }, { name: '004.txt', data: 'a green cube', prefix: 'shard/nested' }], { endBlocks: false }),
  'image-and-corrupt-image.tar': tarFile([
    { name: '005.PNG', data: tinyPng }, { name: '005.TXT', data: 'upper-case extensions' },
    { name: '006.jpeg', data: jpegFile(8, 8, 3).subarray(0, 100) }, { name: '006.txt', data: 'a truncated jpeg' },
  ]),
};

regressions.webdataset = {
  // A caption that is not UTF-8 was decoded into U+FFFD and trained on; now it is skipped and counted.
  'caption-not-utf8.tar': tarFile([{ name: '000.png', data: tinyPng }, { name: '000.txt', data: Buffer.from('caf\u00e9 \u00ff', 'latin1') }]),
};

// --- jsonl (the image names are files the jsonl target writes beside it) ---

corpus.jsonl = {
  'three-lines.jsonl': ['a.png', 'b.jpg', 'corrupt.png'].map((image, i) => json({ image, caption: `caption ${i}` })).join(''),
  'mixed-records.jsonl': [
    json({ image: 'a.png', caption: ' a red cube ' }),
    '\n',
    '{"image": "b.jpg", "caption": "crlf line"}\r\n',
    'not json\n',
    json({ image: 'absent.png', caption: 'missing' }),
    json({ image: 'notes.txt', caption: 'not an image' }),
    json({ image: 'a.png', caption: 7 }),
    json({ image: 'a.png', caption: '   ' }),
    json([1, 2]),
    'null\n',
    json({ image: './b.jpg', caption: '東京 🙂' }),
  ].join(''),
  'no-trailing-newline.jsonl': '{"image":"b.jpg","caption":"last line"}',
};

regressions.jsonl = {
  // The 2^31 PNG aborted the whole process (SIGABRT in zlib); the 9000x9000 JPEG took 44 s. Now both are skipped.
  'line-names-2pow31-png.jsonl': [
    json({ image: 'huge.png', caption: 'a blue circle' }),
    json({ image: 'wide.jpg', caption: 'a green triangle' }),
    json({ image: 'a.png', caption: 'a red square' }),
  ].join(''),
};

// --- writing or checking ---

function main(): void {
  const check = process.argv.includes('--check');
  const unknown = process.argv.slice(2).filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`make-corpus: unknown arguments ${unknown.join(' ')}\nusage: node --import tsx scripts/fuzz/make-corpus.ts [--check]\n`);
    process.exit(1);
  }
  const differing: string[] = [];
  let count = 0;
  for (const [kind, sets] of [['corpus', corpus], ['regressions', regressions]] as const) {
    for (const [target, files] of Object.entries(sets)) {
      for (const [name, content] of Object.entries(files)) {
        const path = join(FIXTURES, kind, target, name);
        const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
        count++;
        if (check) {
          let onDisk: Buffer | null = null;
          try {
            onDisk = readFileSync(path);
          } catch {
            onDisk = null;
          }
          if (onDisk === null || !onDisk.equals(bytes)) differing.push(relative(ROOT, path));
          continue;
        }
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, bytes);
      }
    }
  }
  if (check && differing.length > 0) {
    process.stderr.write(`make-corpus: ${differing.length} of ${count} files differ from what the generator makes (run it without --check):\n${differing.map((p) => `  ${p}\n`).join('')}`);
    process.exit(1);
  }
  process.stdout.write(`make-corpus: ${count} files ${check ? 'match the generator' : 'written'}\n`);
}

main();
