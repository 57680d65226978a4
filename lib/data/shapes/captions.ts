/**
 * The caption grammar: what a scene says (a Query), how it is phrased (several phrasings, chosen at random), and
 * parsing any phrasing back to the Query the detector checks.
 */
import { DalleError } from '../../errors.js';
import { COLOR_NAMES, SHAPE_NAMES, SIZE_NAMES, isHeldOut, type ColorName, type ShapeName, type SizeName } from './palette.js';
import { pick } from './rng.js';
import type { Relation, Scene } from './scene.js';

/** One described object; `size` absent when the caption leaves it out. */
export interface ObjectSpec {
  color: ColorName;
  shape: ShapeName;
  size?: SizeName;
}

export type Query =
  | { capability: 'single'; object: ObjectSpec }
  | { capability: 'counting'; count: number; color: ColorName; shape: ShapeName }
  | { capability: 'relations'; a: ObjectSpec; relation: Relation; b: ObjectSpec }
  | { capability: 'text'; word: string };

export const RELATION_PHRASES: Readonly<Record<Relation, readonly string[]>> = {
  left: ['left of', 'to the left of'],
  right: ['right of', 'to the right of'],
  above: ['above', 'on top of'],
  below: ['below', 'under', 'beneath'],
};

const NUMBER_WORDS: Readonly<Record<number, string>> = { 2: 'two', 3: 'three' };

/** Choice: "{shape}s" taken as English plural, so "crosses" (the parser also accepts the literal "crosss"). */
function plural(shape: ShapeName): string {
  return shape === 'cross' ? 'crosses' : `${shape}s`;
}

/** The scene's query, with each size said or left out at random (probability 1/2 each). */
export function describeScene(scene: Scene, rand: () => number): Query {
  const spec = (o: { color: ColorName; shape: ShapeName; size: SizeName }): ObjectSpec =>
    rand() < 0.5 ? { color: o.color, shape: o.shape, size: o.size } : { color: o.color, shape: o.shape };
  switch (scene.capability) {
    case 'single':
      return { capability: 'single', object: spec(scene.objects[0]) };
    case 'counting': {
      const first = scene.objects[0]!;
      return { capability: 'counting', count: scene.objects.length, color: first.color, shape: first.shape };
    }
    case 'relations':
      return { capability: 'relations', a: spec(scene.objects[0]), relation: scene.relation, b: spec(scene.objects[1]) };
    case 'text':
      return { capability: 'text', word: scene.sign.word };
  }
}

function formatObject(o: ObjectSpec): string {
  return o.size ? `a ${o.size} ${o.color} ${o.shape}` : `a ${o.color} ${o.shape}`;
}

/** Lower-case ASCII caption; `phrase` picks the relation's wording (default the first, "left of" etc.). */
export function formatQuery(query: Query, phrase: string | ((options: readonly string[]) => string) = (o) => o[0]!): string {
  switch (query.capability) {
    case 'single':
      return formatObject(query.object);
    case 'counting':
      return `${NUMBER_WORDS[query.count] ?? String(query.count)} ${query.color} ${plural(query.shape)}`;
    case 'relations': {
      const options = RELATION_PHRASES[query.relation];
      const words = typeof phrase === 'function' ? phrase(options) : phrase;
      if (!options.includes(words)) throw new DalleError('E_INVALID_ARGUMENT', `"${words}" is not a phrasing of ${query.relation}`);
      return `${formatObject(query.a)} ${words} ${formatObject(query.b)}`;
    }
    case 'text':
      return `a sign that says ${query.word.toLowerCase()}`;
  }
}

/** A random caption of the scene: random sizes said, random relation phrasing. */
export function captionScene(scene: Scene, rand: () => number): string {
  return formatQuery(describeScene(scene, rand), (options) => pick(rand, options));
}

const alt = (words: readonly string[]): string => `(${[...words].sort((a, b) => b.length - a.length).join('|')})`;
const OBJECT = `a (?:${alt(SIZE_NAMES)} )?${alt(COLOR_NAMES)} ${alt(SHAPE_NAMES)}`;
const PHRASE_TO_RELATION = new Map(Object.entries(RELATION_PHRASES).flatMap(([rel, ps]) => ps.map((p) => [p, rel as Relation])));
const PLURALS = new Map<string, ShapeName>(SHAPE_NAMES.flatMap((s) => [[plural(s), s], [`${s}s`, s]] as Array<[string, ShapeName]>));
const RE_SINGLE = new RegExp(`^${OBJECT}$`);
const RE_RELATION = new RegExp(`^${OBJECT} ${alt([...PHRASE_TO_RELATION.keys()])} ${OBJECT}$`);
const RE_COUNT = new RegExp(`^(two|three) ${alt(COLOR_NAMES)} ${alt([...PLURALS.keys()])}$`);
const RE_TEXT = /^a sign that says ([a-z]{2,4})$/;

function objectSpec(size: string | undefined, color: string, shape: string): ObjectSpec {
  const spec: ObjectSpec = { color: color as ColorName, shape: shape as ShapeName };
  if (size !== undefined) spec.size = size as SizeName;
  return spec;
}

/** Parses any phrasing of the grammar (case and spacing are forgiven); anything else is E_INVALID_ARGUMENT. */
export function parseCaption(caption: string): Query {
  const text = caption.trim().toLowerCase().replace(/\s+/g, ' ');
  let m: RegExpExecArray | null;
  if ((m = RE_TEXT.exec(text))) return { capability: 'text', word: m[1]!.toUpperCase() };
  if ((m = RE_COUNT.exec(text))) {
    return { capability: 'counting', count: m[1] === 'two' ? 2 : 3, color: m[2] as ColorName, shape: PLURALS.get(m[3]!)! };
  }
  if ((m = RE_SINGLE.exec(text))) return { capability: 'single', object: objectSpec(m[1], m[2]!, m[3]!) };
  if ((m = RE_RELATION.exec(text))) {
    return {
      capability: 'relations',
      a: objectSpec(m[1], m[2]!, m[3]!),
      relation: PHRASE_TO_RELATION.get(m[4]!)!,
      b: objectSpec(m[5], m[6]!, m[7]!),
    };
  }
  throw new DalleError('E_INVALID_ARGUMENT', `caption is not in the shapes-world grammar: ${JSON.stringify(caption)}`);
}

/** True when the query names a held-out colour–shape pair. */
export function queryHasHeldOut(query: Query): boolean {
  switch (query.capability) {
    case 'single':
      return isHeldOut(query.object.color, query.object.shape);
    case 'counting':
      return isHeldOut(query.color, query.shape);
    case 'relations':
      return isHeldOut(query.a.color, query.a.shape) || isHeldOut(query.b.color, query.b.shape);
    case 'text':
      return false;
  }
}

