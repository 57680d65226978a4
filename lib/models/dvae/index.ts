/** The discrete VAE: model, weights on disk, training and evaluation. */
export { DVAE_PRESETS, gridSize, resolveConfig, type DvaeConfig, type DvaePreset, type NetPlan, type GroupPlan, type BlockPlan, type ConvPlan } from './config.js';
export type { TensorTable } from './network.js';
export { Dvae, dvaeParamSpecs, argmaxRows, type DvaeLoss, type DvaeLossOptions } from './model.js';
export { loadDvae, loadOpenAIDvae, saveDvae, inferConfig, DVAE_FORMAT } from './io.js';
export { trainDvae, DVAE_PAPER_ADAM, DVAE_PAPER_SCHEDULES, type DvaeTrainOptions } from './train.js';
export { evaluateDvae, type DvaeEvaluation } from './evaluate.js';
export { psnr, codeUsage, type CodeUsage } from './metrics.js';
export { mapPixels, decoderOutputToPixels, LOGIT_LAPLACE_EPS } from './pixels.js';
