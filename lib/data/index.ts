/**
 * Data for training and evaluation: the shapes world, the emoji dataset, folders, JSONL manifests and WebDataset
 * shards, all behind one source interface, batched and preprocessed off the main thread by `createLoader`.
 */
export type { Batch, Example, ImageRGB, SkipReport, Split } from './types.js';
export { openSourceSpec, mergeSkipReports, type ExampleSource, type ShardSpec, type SourceKind, type SourceSpec } from './source.js';
export { createLoader, type Loader, type LoaderOptions } from './loader.js';
export { decodeImage, decodeImageWith, encodePng, sniffFormat, type Decoder, type ImageFormat } from './image.js';
export { areaResize, centerSquare, crop, exampleSeed, flipHorizontal, preprocess, type Preset } from './preprocess.js';
export { imageGrid, type GridOptions } from './grid.js';
export { packBatch, unpackBatch } from './batch.js';
export type { FolderSpec } from './folder/index.js';
export type { JsonlSpec } from './jsonl/index.js';
export type { WebDatasetSpec } from './webdataset/index.js';
export type { EmojiSpec } from './emoji/index.js';
export type { ShapesSpec } from './shapes/index.js';
export type { MixSpec } from './mix/index.js';
export * as shapes from './shapes/index.js';
export * as emoji from './emoji/index.js';
