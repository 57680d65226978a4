/**
 * dVAE weights on disk. Our files are safetensors whose names and layouts are those of OpenAI's released modules
 * (`encoder.blocks.group_1.block_1.res_path.conv_1.w`, conv weights [cout, cin, k, k]), so a PyTorch user can load
 * them into `dall_e.Encoder`/`Decoder` with load_state_dict; the config rides in `__metadata__`. The released
 * encoder.pkl / decoder.pkl load directly through the restricted torch reader, and so do training checkpoints
 * (their EMA weights when they have them).
 */
import { DalleError } from '../../errors.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../../formats/safetensors.js';
import { InertObject, moduleParameters, readTorchFile, toFloat32 } from '../../formats/torch.js';
import type { Arena } from '../../engine.js';
import { CHECKPOINT_FORMAT } from '../../train/checkpoint.js';
import { checkConfig, type DvaeConfig } from './config.js';
import { Dvae, dvaeParamSpecs } from './model.js';

export const DVAE_FORMAT = 'dalle-engine/dvae@1';

/** HWIO [k, k, cin, cout] → OIHW [cout, cin, k, k], or back with `inverse`. */
export function transposeConvWeight(src: Float32Array, k: number, cin: number, cout: number, inverse = false): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++) {
          const hwio = ((i * k + j) * cin + c) * cout + o;
          const oihw = ((o * cin + c) * k + i) * k + j;
          if (inverse) out[hwio] = src[oihw]!;
          else out[oihw] = src[hwio]!;
        }
  return out;
}

/** Writes the model's parameters (or another arena of the same table, e.g. a trainer's EMA) to `path`. */
export async function saveDvae(model: Dvae, path: string, weights: Arena = model.params): Promise<void> {
  const tensors: Record<string, SafeTensor> = {};
  for (const spec of dvaeParamSpecs(model.config)) {
    const data = weights.get(spec.name).toFloat32Array();
    if (spec.shape.length === 4) {
      const [k, , cin, cout] = spec.shape as [number, number, number, number];
      tensors[spec.name] = { dtype: 'F32', shape: [cout, cin, k, k], data: transposeConvWeight(data, k, cin, cout) };
    } else {
      tensors[spec.name] = { dtype: 'F32', shape: [...spec.shape], data };
    }
  }
  await writeSafetensors(path, tensors, { format: DVAE_FORMAT, config: JSON.stringify(model.config) });
}

/** The config implied by a released-layout state dict's shapes; `imageSize` defaults to a 32×32 code grid. */
export function inferConfig(shapes: ReadonlyMap<string, readonly number[]>, imageSize?: number): DvaeConfig {
  const need = (name: string): readonly number[] => {
    const s = shapes.get(name);
    if (s === undefined) throw new DalleError('E_INVALID_ARGUMENT', `not a dVAE state dict: no ${name}`);
    return s;
  };
  const count = (re: RegExp): number => new Set([...shapes.keys()].map((k) => re.exec(k)?.[1]).filter((x) => x !== undefined)).size;
  const groupCount = count(/^encoder\.blocks\.group_(\d+)\./);
  const blocksPerGroup = count(/^encoder\.blocks\.group_1\.block_(\d+)\./);
  const nHid = need('encoder.blocks.input.w')[0]!;
  const vocabSize = need('encoder.blocks.output.conv.w')[0]!;
  const nInit = need('decoder.blocks.input.w')[0]!;
  return checkConfig({ imageSize: imageSize ?? 32 * 2 ** (groupCount - 1), nHid, groupCount, blocksPerGroup, vocabSize, nInit });
}

/**
 * A model from named tensors; every name and shape must match the config exactly. Conv weights are OIHW in files
 * with the released layout and HWIO (the arena's own) in training checkpoints.
 */
function fromTensors(
  config: DvaeConfig,
  get: (name: string) => { shape: readonly number[]; data: Float32Array } | undefined,
  source: string,
  names: Iterable<string>,
  convLayout: 'oihw' | 'hwio',
): Dvae {
  const model = Dvae.allocate(config);
  try {
    const expected = new Set<string>();
    for (const spec of dvaeParamSpecs(config)) {
      expected.add(spec.name);
      const t = get(spec.name);
      if (t === undefined) throw new DalleError('E_INVALID_ARGUMENT', `${source}: missing ${spec.name}`);
      const oihw = convLayout === 'oihw' && spec.shape.length === 4;
      const want = oihw ? [spec.shape[3]!, spec.shape[2]!, spec.shape[0]!, spec.shape[1]!] : [...spec.shape];
      if (t.shape.join(',') !== want.join(',')) {
        throw new DalleError('E_INVALID_ARGUMENT', `${source}: ${spec.name} is [${t.shape}], expected [${want}] for config ${JSON.stringify(config)}`);
      }
      const [k, , cin, cout] = spec.shape as [number, number, number, number];
      model.params.get(spec.name).write(oihw ? transposeConvWeight(t.data, k, cin, cout, true) : t.data);
    }
    const extra = [...names].filter((n) => !expected.has(n));
    if (extra.length > 0) throw new DalleError('E_INVALID_ARGUMENT', `${source}: unexpected tensors ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
    return model;
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * Loads a dVAE file written by saveDvae, a training checkpoint (its EMA weights if it kept one, else its
 * parameters), or any safetensors state dict with the released names (the config is then inferred from shapes).
 */
export function loadDvae(path: string, options: { imageSize?: number } = {}): Dvae {
  const { tensors, metadata } = readSafetensors(path, { toFloat32: true });
  let prefix = '';
  if (metadata.format === CHECKPOINT_FORMAT) {
    if (metadata.task !== 'dvae') throw new DalleError('E_INVALID_ARGUMENT', `${path} is a ${metadata.task} checkpoint, not a dVAE one`);
    prefix = [...tensors.keys()].some((k) => k.startsWith('ema.')) ? 'ema.' : 'param.';
  }
  const names = new Map<string, SafeTensor>();
  for (const [name, t] of tensors) if (name.startsWith(prefix)) names.set(name.slice(prefix.length), t);
  let config: DvaeConfig;
  if (metadata.config !== undefined) {
    let parsed: DvaeConfig;
    try {
      parsed = JSON.parse(metadata.config) as DvaeConfig;
    } catch {
      throw new DalleError('E_INVALID_ARGUMENT', `${path}: its config metadata is not valid JSON`);
    }
    config = checkConfig({ ...parsed, ...(options.imageSize ? { imageSize: options.imageSize } : {}) });
  } else {
    config = inferConfig(new Map([...names].map(([n, t]) => [n, t.shape])), options.imageSize);
  }
  return fromTensors(config, (n) => asF32(names.get(n), n, path), path, names.keys(), prefix === '' ? 'oihw' : 'hwio');
}

function asF32(t: SafeTensor | undefined, name: string, path: string): { shape: readonly number[]; data: Float32Array } | undefined {
  if (t === undefined) return undefined;
  if (!(t.data instanceof Float32Array)) throw new DalleError('E_UNSUPPORTED', `${path}: ${name} is ${t.dtype}; dVAE weights must be F32, BF16 or F16`);
  return { shape: t.shape, data: t.data };
}

/**
 * OpenAI's released encoder.pkl and decoder.pkl (whole pickled modules), read without Python or code execution.
 * The config comes from the weights' shapes; imageSize defaults to 256 for the released groups.
 */
export function loadOpenAIDvae(encoderPath: string, decoderPath: string, options: { imageSize?: number } = {}): Dvae {
  const all = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [prefix, path, kind] of [['encoder.', encoderPath, 'Encoder'], ['decoder.', decoderPath, 'Decoder']] as const) {
    const root = readTorchFile(path);
    // A whole pickled module names its class: catch swapped or foreign files before comparing shapes.
    if (root instanceof InertObject && !root.class.endsWith(`.${kind}`)) {
      throw new DalleError('E_INVALID_ARGUMENT', `${path}: expected a pickled dVAE ${kind} (dall_e.${kind.toLowerCase()}.${kind}), found ${root.class}`);
    }
    for (const [name, t] of moduleParameters(root)) all.set(prefix + name, { shape: t.shape, data: toFloat32(t) });
  }
  const config = inferConfig(new Map([...all].map(([n, t]) => [n, t.shape])), options.imageSize);
  return fromTensors(config, (n) => all.get(n), `${encoderPath} + ${decoderPath}`, all.keys(), 'oihw');
}
