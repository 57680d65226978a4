/**
 * Transformer weights on disk: safetensors with the parameter table's names and shapes, the config and (optionally)
 * the tokenizer, as HF tokenizer.json text, in `__metadata__`, so one file is everything text → codes needs. Training
 * checkpoints load too (their EMA weights when they kept one).
 */
import type { Arena } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../../formats/safetensors.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import { fromHfJson, toHfJson } from '../../tokenizer/formats.js';
import { CHECKPOINT_FORMAT } from '../../train/checkpoint.js';
import { checkTransformerConfig, type TransformerConfig, transformerParamSpecs } from './config.js';
import { DalleTransformer } from './model.js';
import { checkTensorTable, describeFormat, parseConfigMetadata, TRANSFORMER_FORMAT } from '../weights.js';

export { TRANSFORMER_FORMAT };

/** Writes the model's parameters (or another arena of the same table, e.g. a trainer's EMA) to `path`. */
export async function saveTransformer(model: DalleTransformer, path: string, options: { tokenizer?: BpeTokenizer; weights?: Arena } = {}): Promise<void> {
  const weights = options.weights ?? model.params;
  const tensors: Record<string, SafeTensor> = {};
  for (const spec of transformerParamSpecs(model.config)) tensors[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: weights.get(spec.name).toFloat32Array() };
  const metadata: Record<string, string> = { format: TRANSFORMER_FORMAT, config: JSON.stringify(model.config) };
  if (options.tokenizer) metadata.tokenizer = toHfJson(options.tokenizer);
  await writeSafetensors(path, tensors, metadata);
}

/** A model (and its tokenizer, when the file has one) from a saveTransformer file or a transformer training checkpoint. */
export function loadTransformer(path: string): { model: DalleTransformer; tokenizer: BpeTokenizer | null } {
  const { tensors, metadata } = readSafetensors(path, { toFloat32: true });
  let prefix = '';
  if (metadata.format === CHECKPOINT_FORMAT) {
    if (metadata.task !== 'transformer') throw new DalleError('E_INVALID_ARGUMENT', `${path} is a ${metadata.task} checkpoint, not a transformer one`);
    prefix = [...tensors.keys()].some((k) => k.startsWith('ema.')) ? 'ema.' : 'param.';
  } else if (metadata.format !== TRANSFORMER_FORMAT) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path} is ${describeFormat(metadata.format)}, not a transformer`);
  }
  let config: TransformerConfig;
  try {
    config = checkTransformerConfig(parseConfigMetadata(path, metadata.config) as unknown as TransformerConfig);
  } catch (err) {
    throw err instanceof DalleError && !err.message.startsWith(path) ? new DalleError('E_INVALID_ARGUMENT', `${path}: ${err.message}`) : err;
  }
  const specs = transformerParamSpecs(config);
  checkTensorTable(path, 'transformer', specs, tensors, { prefix, config });
  const tokenizer = metadata.tokenizer !== undefined ? fromHfJson(metadata.tokenizer, `${path} (tokenizer)`) : null;
  if (tokenizer && tokenizer.vocabSize > config.textVocab) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: its tokenizer has ${tokenizer.vocabSize} ids but the model only ${config.textVocab}`);
  }
  const model = DalleTransformer.allocate(config);
  try {
    for (const spec of specs) model.params.get(spec.name).write(tensors.get(prefix + spec.name)!.data as Float32Array);
    return { model, tokenizer };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
