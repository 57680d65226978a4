/**
 * dVAE weights on disk. Our files are safetensors whose names and layouts are those of OpenAI's released modules
 * (`encoder.blocks.group_1.block_1.res_path.conv_1.w`, conv weights [cout, cin, k, k]), so a PyTorch user can load
 * them into `dall_e.Encoder`/`Decoder` with load_state_dict; the config rides in `__metadata__`. The released
 * encoder.pkl / decoder.pkl load directly through the restricted torch reader, and so do training checkpoints
 * (their EMA weights when they have them).
 */
import { DalleError } from '../../errors.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../../formats/safetensors.js';
import { InertObject, moduleParameters, readTorchFile, toFloat32, type TorchTensor } from '../../formats/torch.js';
import type { Arena } from '../../engine.js';
import { CHECKPOINT_FORMAT } from '../../train/checkpoint.js';
import { checkConfig, type DvaeConfig } from './config.js';
import { Dvae, dvaeParamSpecs } from './model.js';
import { checkTensorTable, describeFormat, DVAE_FORMAT, type ExpectedTensor, type FileTensor, parseConfigMetadata } from '../weights.js';

export { DVAE_FORMAT };

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
 * A model from named tensors; every name and shape must match the config exactly, which is checked before the model
 * is allocated. Conv weights are OIHW in files with the released layout and HWIO (the arena's own) in checkpoints.
 */
/** The tensors a file of this config holds, in the file's conv layout (PyTorch's OIHW or our HWIO). */
function fileTable(config: DvaeConfig, convLayout: 'oihw' | 'hwio'): ExpectedTensor[] {
  const inFile = (shape: readonly number[]): readonly number[] =>
    convLayout === 'oihw' && shape.length === 4 ? [shape[3]!, shape[2]!, shape[0]!, shape[1]!] : shape;
  return dvaeParamSpecs(config).map((s) => ({ name: s.name, shape: inFile(s.shape) }));
}

function fromTensors(config: DvaeConfig, tensors: ReadonlyMap<string, FileTensor>, source: string, convLayout: 'oihw' | 'hwio'): Dvae {
  const specs = dvaeParamSpecs(config);
  checkTensorTable(source, 'dVAE', fileTable(config, convLayout), tensors, { config });
  const model = Dvae.allocate(config);
  try {
    for (const spec of specs) {
      const data = tensors.get(spec.name)!.data as Float32Array;
      const [k, , cin, cout] = spec.shape as [number, number, number, number];
      model.params.get(spec.name).write(convLayout === 'oihw' && spec.shape.length === 4 ? transposeConvWeight(data, k, cin, cout, true) : data);
    }
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
  } else if (metadata.format !== undefined && metadata.format !== DVAE_FORMAT) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path} is ${describeFormat(metadata.format)}, not a dVAE`);
  }
  const names = new Map<string, SafeTensor>();
  for (const [name, t] of tensors) if (name.startsWith(prefix)) names.set(name.slice(prefix.length), t);
  let config: DvaeConfig;
  if (metadata.config !== undefined) {
    const parsed = parseConfigMetadata(path, metadata.config);
    try {
      config = checkConfig({ ...(parsed as unknown as DvaeConfig), ...(options.imageSize ? { imageSize: options.imageSize } : {}) });
    } catch (err) {
      throw err instanceof DalleError ? new DalleError(err.code, `${path}: ${err.message}`) : err;
    }
  } else {
    config = inferConfig(new Map([...names].map(([n, t]) => [n, t.shape])), options.imageSize);
  }
  return fromTensors(config, names, path, prefix === '' ? 'oihw' : 'hwio');
}

/**
 * OpenAI's released encoder.pkl and decoder.pkl (whole pickled modules), read without Python or code execution.
 * The config comes from the weights' shapes; imageSize defaults to 256 for the released groups.
 */
export function loadOpenAIDvae(encoderPath: string, decoderPath: string, options: { imageSize?: number } = {}): Dvae {
  const found = new Map<string, TorchTensor>();
  for (const [prefix, path, kind] of [['encoder.', encoderPath, 'Encoder'], ['decoder.', decoderPath, 'Decoder']] as const) {
    const root = readTorchFile(path);
    // A whole pickled module names its class: catch swapped or foreign files before comparing shapes.
    if (root instanceof InertObject && !root.class.endsWith(`.${kind}`)) {
      throw new DalleError('E_INVALID_ARGUMENT', `${path}: expected a pickled dVAE ${kind} (dall_e.${kind.toLowerCase()}.${kind}), found ${root.class}`);
    }
    for (const [name, t] of moduleParameters(root)) found.set(prefix + name, t);
  }
  const source = `${encoderPath} + ${decoderPath}`;
  const config = inferConfig(new Map([...found].map(([n, t]) => [n, t.shape])), options.imageSize);
  // Names, shapes and dtypes first, widening nothing: a 709-byte file can view one stored float as 4096 x 4096 under
  // ten names, and widening each before this check took 1.4 GB.
  const unwidened = new Map([...found].map(([n, t]) => [n, { shape: t.shape, dtype: t.dtype, data: TORCH_FLOATING.has(t.dtype) ? NOT_YET_WIDENED : t.data }]));
  checkTensorTable(source, 'dVAE', fileTable(config, 'oihw'), unwidened, { config });
  return fromTensors(config, new Map([...found].map(([n, t]) => [n, { shape: t.shape, data: toFloat32(t) }])), source, 'oihw');
}

const TORCH_FLOATING: ReadonlySet<string> = new Set(['f32', 'f64', 'f16', 'bf16']);
/** Stands for a floating tensor's data in the table check, which looks only at its type. */
const NOT_YET_WIDENED = new Float32Array(0);
