/**
 * The Node API of dalle-engine: load a model, generate images from text, rank them with CLIP. This is the page to
 * start from; the engine underneath (tensors, ops, models, trainers, data) is documented under "engine".
 *
 * ```ts
 * import { Dalle } from 'dalle-engine';
 * await using dalle = await Dalle.load();
 * const { images } = await dalle.generate('a small red square', { n: 16, keep: 4 });
 * ```
 *
 * @module api
 */
export { Dalle, chooseBackend } from './dalle.js';
export type { Backend, GeneratedImage, GenerateOptions, GenerateProgress, GenerateResult, LoadOptions, ModelInfo } from './types.js';
export { defaultModelPath, loadModelFiles, MODEL_FORMAT, readManifest, type ModelFiles, type ModelManifest } from './model-files.js';
export { DalleAbortError, DalleError, DalleLoadError, type DalleErrorCode } from '../errors.js';
