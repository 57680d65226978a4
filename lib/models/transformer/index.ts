/** The DALL·E transformer: model, training, and sampling with a KV cache and image completion. */
export {
  TRANSFORMER_PRESETS,
  checkTransformerConfig,
  layerMask,
  parameterCount,
  resolveTransformerConfig,
  sequenceLayout,
  transformerMemory,
  transformerParamSpecs,
  type SequenceLayout,
  type TransformerConfig,
  type TransformerConfigInput,
  type TransformerMemory,
  type TransformerPreset,
  type TransformerParamSpec,
  type ParamInit,
} from './config.js';
export { DalleTransformer, type CreateOptions, type TokenBatch, type TransformerLoss } from './model.js';
export type { LayerContext } from './layers.js';
export { IncrementalDecoder, defaultPromptRows, generateCodes, sampleIndex, type GenerateOptions, type GenerateProgress, type SamplingOptions } from './sampler.js';
export { generateImages, type GeneratedImages, type GenerateImagesOptions } from './generate.js';
export { loadTransformer, saveTransformer, TRANSFORMER_FORMAT } from './io.js';
export {
  TRANSFORMER_PAPER_ADAM,
  TRANSFORMER_PAPER_LR,
  TransformerTask,
  encodeDataset,
  textCodeBatches,
  textSlots,
  trainTransformer,
  type BatchOptions,
  type EncodedDataset,
  type TextCodeBatch,
  type TransformerTrainOptions,
} from './train.js';
