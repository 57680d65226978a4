/** CLIP weights on disk: safetensors with the config and (optionally) the tokenizer in `__metadata__`. */
import { DalleError } from '../../errors.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../../formats/safetensors.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';
import { fromHfJson, toHfJson } from '../../tokenizer/formats.js';
import { CHECKPOINT_FORMAT } from '../../train/checkpoint.js';
import { checkClipConfig, Clip, type ClipConfig, clipParamSpecs } from './model.js';

export const CLIP_FORMAT = 'dalle-engine/clip@1';

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
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: not a CLIP file (format ${JSON.stringify(metadata.format)})`);
  }
  let config: ClipConfig;
  try {
    config = checkClipConfig(JSON.parse(metadata.config ?? '') as ClipConfig);
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: ${err instanceof DalleError ? err.message : 'its config metadata is missing or not valid JSON'}`);
  }
  const model = Clip.create(config);
  try {
    for (const spec of clipParamSpecs(config)) {
      const t = tensors.get(prefix + spec.name);
      if (t === undefined) throw new DalleError('E_INVALID_ARGUMENT', `${path}: missing ${prefix}${spec.name}`);
      if (t.shape.join(',') !== spec.shape.join(',')) throw new DalleError('E_INVALID_ARGUMENT', `${path}: ${spec.name} is [${t.shape}], expected [${spec.shape}]`);
      if (!(t.data instanceof Float32Array)) throw new DalleError('E_UNSUPPORTED', `${path}: ${spec.name} is ${t.dtype}; CLIP weights must be F32, BF16 or F16`);
      model.params.get(spec.name).write(t.data);
    }
    const tokenizer = metadata.tokenizer !== undefined ? fromHfJson(metadata.tokenizer, `${path} (tokenizer)`) : null;
    return { model, tokenizer };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
