/** CLIP weights on disk: safetensors with the config and (optionally) the tokenizer in `__metadata__`. */
import { DalleError } from '../../errors.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../../formats/safetensors.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import { fromHfJson, toHfJson } from '../../tokenizer/formats.js';
import { CHECKPOINT_FORMAT } from '../../train/checkpoint.js';
import { checkClipConfig, Clip, type ClipConfig, clipParamSpecs } from './model.js';
import { checkTensorTable, CLIP_FORMAT, describeFormat, parseConfigMetadata } from '../weights.js';

export { CLIP_FORMAT };

export async function saveClip(model: Clip, path: string, options: { tokenizer?: BpeTokenizer } = {}): Promise<void> {
  const tensors: Record<string, SafeTensor> = {};
  for (const spec of clipParamSpecs(model.config)) tensors[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: model.params.get(spec.name).toFloat32Array() };
  const metadata: Record<string, string> = { format: CLIP_FORMAT, config: JSON.stringify(model.config) };
  if (options.tokenizer) metadata.tokenizer = toHfJson(options.tokenizer);
  await writeSafetensors(path, tensors, metadata);
}

/** A CLIP (and its tokenizer, when the file has one) from saveClip or a CLIP training checkpoint (EMA if kept). */
export function loadClip(path: string): { model: Clip; tokenizer: BpeTokenizer | null } {
  const { tensors, metadata } = readSafetensors(path, { toFloat32: true });
  let prefix = '';
  if (metadata.format === CHECKPOINT_FORMAT) {
    if (metadata.task !== 'clip') throw new DalleError('E_INVALID_ARGUMENT', `${path} is a ${metadata.task} checkpoint, not a CLIP one`);
    prefix = [...tensors.keys()].some((k) => k.startsWith('ema.')) ? 'ema.' : 'param.';
  } else if (metadata.format !== CLIP_FORMAT) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path} is ${describeFormat(metadata.format)}, not a CLIP`);
  }
  let config: ClipConfig;
  try {
    config = checkClipConfig(parseConfigMetadata(path, metadata.config) as unknown as ClipConfig);
  } catch (err) {
    throw err instanceof DalleError && !err.message.startsWith(path) ? new DalleError('E_INVALID_ARGUMENT', `${path}: ${err.message}`) : err;
  }
  const specs = clipParamSpecs(config);
  checkTensorTable(path, 'CLIP', specs, tensors, { prefix, config });
  const tokenizer = metadata.tokenizer !== undefined ? fromHfJson(metadata.tokenizer, `${path} (tokenizer)`) : null;
  const model = Clip.allocate(config);
  try {
    for (const spec of specs) model.params.get(spec.name).write(tensors.get(prefix + spec.name)!.data as Float32Array);
    return { model, tokenizer };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
