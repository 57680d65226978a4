/** Byte-level BPE for DALL·E captions: training, encoding, and HF / GPT-2 file formats. */
export { BpeTokenizer, type BpeModel, type EncodeOptions, type FitResult } from './bpe.js';
export { byteToChar, charToByte, fromByteLevel, toByteLevel } from './bytes.js';
export * from './formats.js';
export { normalizeCaption } from './normalize.js';
export { PRETOKENIZE_SOURCE, pretokenize, pretokenizeRegex } from './pretokenize.js';
export { trainBpe, type TrainOptions } from './train.js';
