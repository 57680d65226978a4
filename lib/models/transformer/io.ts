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

export const TRANSFORMER_FORMAT = 'dalle-engine/transformer@1';

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
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: not a transformer file (format ${JSON.stringify(metadata.format)})`);
  }
  let config: TransformerConfig;
  try {
    config = checkTransformerConfig(JSON.parse(metadata.config ?? '') as TransformerConfig);
  } catch (err) {
    if (err instanceof DalleError) throw new DalleError('E_INVALID_ARGUMENT', `${path}: ${err.message}`);
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: its config metadata is missing or not valid JSON`);
  }
  const tokenizer = metadata.tokenizer !== undefined ? fromHfJson(metadata.tokenizer, `${path} (tokenizer)`) : null;
  const model = DalleTransformer.allocate(config);
  try {
    const expected = new Set<string>();
    for (const spec of transformerParamSpecs(config)) {
      expected.add(spec.name);
      const t = tensors.get(prefix + spec.name);
      if (t === undefined) throw new DalleError('E_INVALID_ARGUMENT', `${path}: missing ${prefix}${spec.name}`);
      if (t.shape.join(',') !== spec.shape.join(',')) throw new DalleError('E_INVALID_ARGUMENT', `${path}: ${spec.name} is [${t.shape}], expected [${spec.shape}]`);
      if (!(t.data instanceof Float32Array)) throw new DalleError('E_UNSUPPORTED', `${path}: ${spec.name} is ${t.dtype}; transformer weights must be F32, BF16 or F16`);
      model.params.get(spec.name).write(t.data);
    }
    const extra = [...tensors.keys()].filter((n) => n.startsWith(prefix) && !expected.has(n.slice(prefix.length)));
    if (prefix === '' && extra.length > 0) throw new DalleError('E_INVALID_ARGUMENT', `${path}: unexpected tensors ${extra.slice(0, 5).join(', ')}`);
    if (tokenizer && tokenizer.vocabSize > config.textVocab) {
      throw new DalleError('E_INVALID_ARGUMENT', `${path}: its tokenizer has ${tokenizer.vocabSize} ids but the model only ${config.textVocab}`);
    }
    return { model, tokenizer };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
