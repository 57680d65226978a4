/**
 * The shapes world as a source: `openSource({ kind: 'shapes', size, count, split, seed })` yields rendered scenes
 * with random captions. Scene i of a source is a pure function of mixSeed(seed, i), and so is its split: a scene
 * showing a held-out colour–shape pair is always 'test' (so 'train' never sees one), and of the rest one in ten,
 * chosen by a hash of the scene seed, is 'test' too.
 */
import { DalleError } from '../../errors.js';
import { inShard, type ExampleSource, type ShardSpec } from '../source.js';
import type { Example, Split } from '../types.js';
import { captionScene } from './captions.js';
import { checkCanvas, isHeldOut } from './palette.js';
import { renderScene } from './render.js';
import { mixSeed, mulberry32, pick } from './rng.js';
import { CAPABILITIES, generateScene, type Capability, type Scene } from './scene.js';

export interface ShapesSpec {
  kind: 'shapes';
  /** Canvas side: 32, 64 (default) or 128. */
  size?: number;
  /** Examples in this split; endless when absent. */
  count?: number;
  split?: Split;
  seed?: number;
  /** Which scene kinds to draw, uniformly; default all four. */
  capabilities?: Capability[];
  shard?: ShardSpec;
}

/** One in TEST_EVERY scenes without a held-out pair goes to 'test'. */
const TEST_EVERY = 10;

export function sceneHasHeldOut(scene: Scene): boolean {
  return scene.capability !== 'text' && scene.objects.some((o) => isHeldOut(o.color, o.shape));
}

export function sceneSplit(sceneSeed: number, scene: Scene): Split {
  return sceneHasHeldOut(scene) || mixSeed(sceneSeed, 0x5eed) % TEST_EVERY === 0 ? 'test' : 'train';
}

/** The scene and caption drawn from one scene seed. */
export function drawScene(side: number, sceneSeed: number, capabilities: readonly Capability[] = CAPABILITIES): { scene: Scene; caption: string } {
  const rand = mulberry32(sceneSeed);
  const scene = generateScene(side, pick(rand, capabilities), rand);
  return { scene, caption: captionScene(scene, rand) };
}

function validate(spec: ShapesSpec): Required<Omit<ShapesSpec, 'shard'>> & { shard?: ShardSpec } {
  const bad = (what: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `shapes source: ${what}`);
  };
  if (spec === null || typeof spec !== 'object' || spec.kind !== 'shapes') bad(`spec.kind must be 'shapes'`);
  const size = checkCanvas(spec.size ?? 64);
  const count = spec.count ?? Infinity;
  if (count !== Infinity && !(Number.isInteger(count) && count >= 0)) bad(`count must be a non-negative integer; got ${String(count)}`);
  const split = spec.split ?? 'train';
  if (split !== 'train' && split !== 'test') bad(`split must be 'train' or 'test'; got ${String(split)}`);
  const seed = spec.seed ?? 0;
  if (!Number.isInteger(seed)) bad(`seed must be an integer; got ${String(seed)}`);
  const capabilities = spec.capabilities ?? [...CAPABILITIES];
  if (!Array.isArray(capabilities) || capabilities.length === 0 || !capabilities.every((c) => CAPABILITIES.includes(c))) {
    bad(`capabilities must be a non-empty list of ${CAPABILITIES.join(', ')}`);
  }
  return { kind: 'shapes', size, count, split, seed, capabilities, ...(spec.shard ? { shard: spec.shard } : {}) };
}

/**
 * The examples of one split, in order. Sharding numbers the split's own examples (j = 0, 1, …), so the shards of a
 * count-limited split partition it; every shard draws every scene (cheap) but renders only its own (the cost).
 */
export function* shapesExamples(spec: ShapesSpec): Generator<Example> {
  const { size, count, split, seed, capabilities, shard } = validate(spec);
  for (let i = 0, j = 0; j < count; i++) {
    const sceneSeed = mixSeed(seed, i);
    const { scene, caption } = drawScene(size, sceneSeed, capabilities);
    if (sceneSplit(sceneSeed, scene) !== split) continue;
    if (inShard(shard, j)) yield { key: `shapes/${size}/${seed}/${i}`, image: renderScene(scene), caption };
    j++;
  }
}

export function openSource(spec: ShapesSpec): ExampleSource {
  validate(spec);
  return {
    skipped: { skipped: 0, reasons: {}, samples: [] },
    sharded: true,
    async *[Symbol.asyncIterator]() {
      yield* shapesExamples(spec);
    },
  };
}

export { CAPABILITIES, RELATIONS, generateScene, placeSign, relationHolds, type Box, type Capability, type PlacedObject, type Relation, type Scene, type Sign } from './scene.js';
export { captionScene, describeScene, formatQuery, parseCaption, queryHasHeldOut, RELATION_PHRASES, type ObjectSpec, type Query } from './captions.js';
export { checkCaption, classifyShape, detect, readSign, satisfies, scoreSamples, type CapabilityScore, type Component, type DetectedObject, type Detection, type ReportCapability } from './detect.js';
export { renderScene, shapeMask } from './render.js';
export { evaluationPrompts, type Prompt } from './prompts.js';
export { COLORS, COLOR_NAMES, HELD_OUT, SHAPE_NAMES, SIZE_NAMES, isHeldOut, objectSide, type ColorName, type ShapeName, type SizeName } from './palette.js';
export { GLYPHS, LETTERS } from './font.js';
export { mixSeed, mulberry32 } from './rng.js';
