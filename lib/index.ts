/**
 * dalle-engine: DALL·E 1 for Node.js over a C++/CUDA core. The package's entry: the Node API (see "api") and the
 * engine under it.
 *
 * @module engine
 */
export { DalleAbortError, DalleError, DalleLoadError, type DalleErrorCode } from './errors.js';
export { Tensor, f32ToBf16, bf16ToF32, type DType, type DeviceName, type TensorData, type TensorOptions } from './tensor.js';
export { Arena, buildInfo, cachedBytes, liveBytes, releaseCachedMemory, setCheckFinite, setSimdLevel, type ArenaSpec, type BuildInfo, type SimdLevel } from './engine.js';
export { loadAddon, candidatePaths, candidates, cudaPackageName, loadedBinary, probeNvidiaDriver, type Candidate } from './native/loader.js';
export { Dalle, chooseBackend } from './api/dalle.js';
export type { Backend, GeneratedImage, GenerateOptions, GenerateProgress, GenerateResult, LoadOptions, ModelInfo } from './api/types.js';
export { defaultModelPath, loadModelFiles, MODEL_FORMAT, readManifest, type ModelFiles, type ModelManifest } from './api/model-files.js';
export * as ops from './ops/index.js';
export * as tokenizer from './tokenizer/index.js';
export * as data from './data/index.js';
export * as dvae from './models/dvae/index.js';
export * as transformer from './models/transformer/index.js';
export * as clip from './models/clip/index.js';
export * as training from './train/index.js';
export * as formats from './formats/index.js';
export { asyncRunner, syncRunner, type OpRunner } from './nn/runner.js';
export type { NativeAddon, NativeAttrs, NativeBuildInfo, NativeDevice, NativeDType, NativeTensorHandle, NativeOpInfo, NativeArena } from './native/addon.js';
