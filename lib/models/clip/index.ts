/** CLIP: the contrastive image–text model DALL·E reranks its samples with, and the reranking pipeline. */
export { CLIP_PRESETS, Clip, checkClipConfig, clipParamSpecs, imageShape, type ClipConfig, type ClipPreset } from './model.js';
export { featureWidth, type ClipParamSpec, type ConvImageShape, type ImageShape, type VitImageShape } from './image-encoders.js';
export { CLIP_INIT_LOG_SCALE, CLIP_MAX_LOGIT_SCALE, clipLoss, cosineMatrix, normalizeRows, type ClipLossResult } from './loss.js';
export { CLIP_PAPER_ADAM, ClipTask, rerank, retrievalTop1, trainClip, type ClipBatch, type ClipTrainOptions, type RerankResult } from './train.js';
export { CLIP_FORMAT, loadClip, saveClip } from './io.js';
export { generateReranked, type DallePipeline, type RerankedImages, type RerankedOptions } from './pipeline.js';
