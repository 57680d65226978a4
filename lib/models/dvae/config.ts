/**
 * The dVAE's configuration, its presets, and the layer plan both the parameter table and the forward pass are built
 * from. Names follow OpenAI's released modules (dall_e/encoder.py, decoder.py), so a state dict maps one to one:
 * `encoder.blocks.group_1.block_1.res_path.conv_1.w`.
 */
import { DalleError } from '../../errors.js';
import { IMAGE_LIMITS } from '../../data/image.js';
import { checkBounds } from '../weights.js';

export interface DvaeConfig {
  /** Input side in pixels; a multiple of 2^(groupCount − 1). */
  imageSize: number;
  /** Width of the first encoder group and the last decoder group; groups double (encoder) or halve (decoder). */
  nHid: number;
  groupCount: number;
  blocksPerGroup: number;
  /** Codes in the bottleneck (K). */
  vocabSize: number;
  /** Width of the decoder's first 1×1 conv (the effective codebook dimension); 128 in the release. */
  nInit: number;
}

export const DVAE_PRESETS = {
  /** The released model: 256² images → 32×32 codes from 8192; 53.8M + 43.8M parameters. */
  openai: { imageSize: 256, nHid: 256, groupCount: 4, blocksPerGroup: 2, vocabSize: 8192, nInit: 128 },
  /** Shapes world at 32²: 16×16 codes (one per 2×2 pixels, so 6-px shapes keep their outlines). */
  small32: { imageSize: 32, nHid: 32, groupCount: 2, blocksPerGroup: 1, vocabSize: 512, nInit: 64 },
  /** Shapes world or emoji at 64²: 16×16 codes. */
  small64: { imageSize: 64, nHid: 32, groupCount: 3, blocksPerGroup: 1, vocabSize: 1024, nInit: 64 },
} as const satisfies Record<string, DvaeConfig>;

export type DvaePreset = keyof typeof DVAE_PRESETS;

export function resolveConfig(config: DvaePreset | Partial<DvaeConfig> & { preset?: DvaePreset }): DvaeConfig {
  const base = typeof config === 'string' ? DVAE_PRESETS[config] : DVAE_PRESETS[config.preset ?? 'small32'];
  if (base === undefined) {
    throw new DalleError('E_INVALID_ARGUMENT', `unknown dVAE preset ${JSON.stringify(config)}; expected one of ${Object.keys(DVAE_PRESETS).join(', ')}`);
  }
  const { preset: _preset, ...overrides } = typeof config === 'string' ? {} : config;
  return checkConfig({ ...base, ...overrides });
}

/**
 * Bounds on every field, far above the release (nHid 256, 4 groups of 2 blocks, 8192 codes), so that a config read
 * from a file is refused before its plan is built: 65536 blocks per group once hung the loader.
 */
export const DVAE_LIMITS = {
  imageSize: IMAGE_LIMITS.maxSide,
  nHid: 16384,
  groupCount: 12,
  blocksPerGroup: 64,
  vocabSize: 1 << 20,
  nInit: 16384,
} as const satisfies Record<keyof DvaeConfig, number>;

/** The widest conv, nHid · 2^(groupCount − 1) channels. */
const MAX_DVAE_CHANNELS = 1 << 16;

export function checkConfig(c: DvaeConfig): DvaeConfig {
  const bad = (msg: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `dVAE config: ${msg}`);
  };
  checkBounds('dVAE', c, DVAE_LIMITS);
  for (const key of ['imageSize', 'nHid', 'groupCount', 'blocksPerGroup', 'vocabSize', 'nInit'] as const) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) bad(`${key} must be a positive integer, got ${String(c[key])}`);
  }
  if (c.nHid % 4 !== 0) bad(`nHid must be a multiple of 4 (blocks run at a quarter of their width), got ${c.nHid}`);
  const down = 2 ** (c.groupCount - 1);
  if (c.nHid * down > MAX_DVAE_CHANNELS) bad(`nHid ${c.nHid} doubled over ${c.groupCount} groups is ${c.nHid * down} channels, above ${MAX_DVAE_CHANNELS}`);
  if (c.imageSize % down !== 0) bad(`imageSize ${c.imageSize} must be a multiple of 2^(groupCount − 1) = ${down}`);
  return { imageSize: c.imageSize, nHid: c.nHid, groupCount: c.groupCount, blocksPerGroup: c.blocksPerGroup, vocabSize: c.vocabSize, nInit: c.nInit };
}

/** Side of the code grid: the image side over the encoder's groupCount − 1 max-pools. */
export function gridSize(c: DvaeConfig): number {
  return c.imageSize / 2 ** (c.groupCount - 1);
}

export interface ConvPlan {
  /** Parameter prefix: `${name}.w` [k, k, cin, cout] (HWIO) and `${name}.b` [cout]. */
  name: string;
  k: 1 | 3 | 7;
  cin: number;
  cout: number;
}

export interface BlockPlan {
  nIn: number;
  nOut: number;
  /** 1×1 conv when the width changes; identity otherwise. */
  idPath: ConvPlan | null;
  resPath: [ConvPlan, ConvPlan, ConvPlan, ConvPlan];
}

export interface GroupPlan {
  blocks: BlockPlan[];
  /** After the blocks: the encoder max-pools and the decoder upsamples, in every group but the last. */
  resample: 'maxpool' | 'upsample' | null;
}

export interface NetPlan {
  input: ConvPlan;
  groups: GroupPlan[];
  /** After a ReLU. */
  output: ConvPlan;
  /** 1/L² with L = groupCount · blocksPerGroup: the gain on every residual path. */
  postGain: number;
}

function block(prefix: string, nIn: number, nOut: number, kernels: readonly [1 | 3, 1 | 3, 1 | 3, 1 | 3]): BlockPlan {
  const h = nOut / 4;
  const widths = [nIn, h, h, h, nOut];
  const resPath = kernels.map((k, i) => ({ name: `${prefix}.res_path.conv_${i + 1}`, k, cin: widths[i]!, cout: widths[i + 1]! }));
  return {
    nIn,
    nOut,
    idPath: nIn === nOut ? null : { name: `${prefix}.id_path`, k: 1, cin: nIn, cout: nOut },
    resPath: resPath as BlockPlan['resPath'],
  };
}

function groups(
  prefix: string,
  c: DvaeConfig,
  widthOf: (g: number) => number,
  firstIn: number,
  kernels: readonly [1 | 3, 1 | 3, 1 | 3, 1 | 3],
  resample: 'maxpool' | 'upsample',
): GroupPlan[] {
  const out: GroupPlan[] = [];
  let nIn = firstIn;
  for (let g = 1; g <= c.groupCount; g++) {
    const w = widthOf(g);
    const blocks: BlockPlan[] = [];
    for (let i = 1; i <= c.blocksPerGroup; i++) {
      blocks.push(block(`${prefix}.blocks.group_${g}.block_${i}`, nIn, w, kernels));
      nIn = w;
    }
    out.push({ blocks, resample: g < c.groupCount ? resample : null });
  }
  return out;
}

export function encoderPlan(c: DvaeConfig): NetPlan {
  const width = (g: number): number => c.nHid * 2 ** (g - 1);
  return {
    input: { name: 'encoder.blocks.input', k: 7, cin: 3, cout: c.nHid },
    groups: groups('encoder', c, width, c.nHid, [3, 3, 3, 1], 'maxpool'),
    output: { name: 'encoder.blocks.output.conv', k: 1, cin: width(c.groupCount), cout: c.vocabSize },
    postGain: 1 / (c.groupCount * c.blocksPerGroup) ** 2,
  };
}

export function decoderPlan(c: DvaeConfig): NetPlan {
  const width = (g: number): number => c.nHid * 2 ** (c.groupCount - g);
  return {
    input: { name: 'decoder.blocks.input', k: 1, cin: c.vocabSize, cout: c.nInit },
    groups: groups('decoder', c, width, c.nInit, [1, 3, 3, 3], 'upsample'),
    output: { name: 'decoder.blocks.output.conv', k: 1, cin: c.nHid, cout: 6 },
    postGain: 1 / (c.groupCount * c.blocksPerGroup) ** 2,
  };
}

/** Every conv of a plan in a fixed order: input, blocks (id path first), output. */
export function planConvs(plan: NetPlan): ConvPlan[] {
  const out = [plan.input];
  for (const g of plan.groups) for (const b of g.blocks) out.push(...(b.idPath ? [b.idPath] : []), ...b.resPath);
  out.push(plan.output);
  return out;
}
