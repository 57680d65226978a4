/**
 * Text → image: captions through the tokenizer, codes from the transformer's sampler, pixels from the dVAE decoder.
 */
import { DalleError, throwIfAborted } from '../../errors.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import type { Dvae } from '../dvae/model.js';
import type { DalleTransformer } from './model.js';
import { generateCodes, type GenerateOptions } from './sampler.js';
import { textSlots } from './train.js';

export interface GeneratedImages {
  /** uint8 [B, S, S, 3], one image per caption. */
  images: Uint8Array;
  /** i32 [B·W²]: the sampled codes. */
  codes: Int32Array;
  /** Image side S. */
  size: number;
  /** Captions whose BPE ids did not fit the model's text slots (their end was dropped). */
  truncated: number[];
}

export interface GenerateImagesOptions extends Omit<GenerateOptions, 'prompt'> {
  /**
   * Image completion from pixels: uint8 [S, S, 3] (one image for every caption) or [B, S, S, 3] (one per caption),
   * encoded with the dVAE; the top `rows` rows of its codes are kept (default: 15 of 32, scaled to the grid).
   */
  prompt?: { image: Uint8Array; rows?: number };
}

/** One image per caption (repeat a caption to get several samples of it). */
export async function generateImages(model: DalleTransformer, dvae: Dvae, tokenizer: BpeTokenizer, captions: readonly string[], options: GenerateImagesOptions = {}): Promise<GeneratedImages> {
  if (!Array.isArray(captions) || captions.length === 0) throw new DalleError('E_INVALID_ARGUMENT', 'captions must be a non-empty array of strings');
  if (dvae.grid !== model.config.grid || dvae.config.vocabSize !== model.config.imageVocab) {
    throw new DalleError(
      'E_INVALID_ARGUMENT',
      `the dVAE (${dvae.grid}×${dvae.grid} codes from ${dvae.config.vocabSize}) does not match the transformer (${model.config.grid}×${model.config.grid} from ${model.config.imageVocab})`,
    );
  }
  if (tokenizer.vocabSize > model.config.textVocab) {
    throw new DalleError('E_INVALID_ARGUMENT', `the tokenizer has ${tokenizer.vocabSize} ids but the transformer only ${model.config.textVocab}`);
  }
  const T = model.config.textLen;
  const text = new Int32Array(captions.length * T);
  const truncated: number[] = [];
  captions.forEach((c, i) => {
    if (typeof c !== 'string') throw new DalleError('E_INVALID_ARGUMENT', `captions[${i}] is not a string`);
    if (tokenizer.encode(c).length > T) truncated.push(i);
    text.set(textSlots(tokenizer, c, T), i * T);
  });
  let prompt: GenerateOptions['prompt'];
  if (options.prompt) {
    const per = dvae.config.imageSize * dvae.config.imageSize * 3;
    const img = options.prompt.image;
    if (!(img instanceof Uint8Array) || (img.length !== per && img.length !== captions.length * per)) {
      throw new DalleError('E_INVALID_ARGUMENT', `prompt.image must be uint8 [${dvae.config.imageSize}, ${dvae.config.imageSize}, 3], or one such image per caption`);
    }
    prompt = { codes: await dvae.encode(img, options.run), rows: options.prompt.rows };
  }
  const codes = await generateCodes(model, text, { ...options, prompt });
  throwIfAborted(options.signal, 'generation');
  const images = await dvae.decode(codes, options.run);
  return { images, codes, size: dvae.config.imageSize, truncated };
}
