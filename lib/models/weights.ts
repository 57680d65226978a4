/**
 * What every weights loader checks before it allocates a model. A file's `__metadata__` is only text: a config
 * edited to 10⁹ layers must be refused by its bounds, and one that is in bounds but does not describe the tensors
 * beside it must be refused by comparing the parameter table with the file, both before a byte of the model exists.
 */
import { DalleError } from '../errors.js';
import { CHECKPOINT_FORMAT } from '../train/checkpoint.js';

export const DVAE_FORMAT = 'dalle-engine/dvae@1';
export const TRANSFORMER_FORMAT = 'dalle-engine/transformer@1';
export const CLIP_FORMAT = 'dalle-engine/clip@1';

const FORMAT_NAMES: Record<string, string> = {
  [DVAE_FORMAT]: 'a dVAE file',
  [TRANSFORMER_FORMAT]: 'a transformer file',
  [CLIP_FORMAT]: 'a CLIP file',
  [CHECKPOINT_FORMAT]: 'a training checkpoint',
};

/** "a CLIP file (dalle-engine/clip@1)" for a format we know, the raw value otherwise: for "is X, not Y" errors. */
export function describeFormat(format: string | undefined): string {
  if (format === undefined) return 'a safetensors file without a format';
  const name = FORMAT_NAMES[format];
  return name ? `${name} (${format})` : `a file of format ${JSON.stringify(format)}`;
}

/**
 * Throws unless every listed field of `config` is an integer in [1, limit]. The limits are far above any model
 * that fits in memory, so they only refuse configs nobody could have trained, before their tables are built.
 */
export function checkBounds<K extends string>(what: string, config: object, limits: Readonly<Record<K, number>>): void {
  for (const key of Object.keys(limits) as K[]) {
    const v = (config as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new DalleError('E_INVALID_ARGUMENT', `${what} config: ${key} must be a positive integer, got ${describeValue(v)}`);
    }
    if (v > limits[key]) throw new DalleError('E_INVALID_ARGUMENT', `${what} config: ${key} is ${v}, above the limit of ${limits[key]}`);
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** A config object from a file's `config` metadata, or a DalleError naming the file. */
export function parseConfigMetadata(path: string, text: string | undefined): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? '');
  } catch {
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: its config metadata is ${text === undefined ? 'missing' : 'not valid JSON'}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: its config metadata is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export interface ExpectedTensor {
  name: string;
  /** The shape the file must hold (the file's layout, which may differ from the arena's). */
  shape: readonly number[];
}

/** A tensor as read from a file: float dtypes already widened to a Float32Array. */
export interface FileTensor {
  shape: readonly number[];
  data: unknown;
  dtype?: string;
}

/**
 * Compares the tensors of a file (those under `prefix`, named without it) with the table a config implies: every
 * name, shape and dtype, then (unless `allowExtra`) nothing else, so the file's bytes (which the reader has checked
 * against each tensor's shape) are exactly the model's. Runs before the model is allocated, so a config that does
 * not describe the file costs nothing. `model` names the kind of weights in messages ("dVAE").
 */
export function checkTensorTable(
  source: string,
  model: string,
  expected: readonly ExpectedTensor[],
  tensors: ReadonlyMap<string, FileTensor>,
  options: { prefix?: string; allowExtra?: boolean; config?: unknown } = {},
): void {
  const prefix = options.prefix ?? '';
  const forConfig = options.config === undefined ? '' : ` for config ${JSON.stringify(options.config)}`;
  const names = new Set<string>();
  for (const e of expected) {
    names.add(e.name);
    const t = tensors.get(prefix + e.name);
    if (t === undefined) {
      const held = [...tensors.keys()].filter((n) => n.startsWith(prefix)).length;
      throw new DalleError('E_INVALID_ARGUMENT', `${source}: missing ${prefix}${e.name} (the file holds ${held} tensors, its config needs ${expected.length})`);
    }
    if (t.shape.join(',') !== e.shape.join(',')) {
      throw new DalleError('E_INVALID_ARGUMENT', `${source}: ${e.name} is [${t.shape}], expected [${e.shape}]${forConfig}`);
    }
    if (!(t.data instanceof Float32Array)) {
      throw new DalleError('E_UNSUPPORTED', `${source}: ${e.name} is ${t.dtype ?? 'not floating point'}; ${model} weights must be F32, BF16 or F16`);
    }
  }
  if (options.allowExtra) return;
  const extra = [...tensors.keys()].filter((n) => n.startsWith(prefix) && !names.has(n.slice(prefix.length)));
  if (extra.length > 0) {
    throw new DalleError('E_INVALID_ARGUMENT', `${source}: unexpected tensors ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  }
}
