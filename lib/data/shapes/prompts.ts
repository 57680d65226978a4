/**
 * The fixed prompt list the per-capability report is taken over: the same captions for every model and every run,
 * so scores compare. Captions come from the seeded generator (so they follow its phrasing mix), plus prompts that
 * name each held-out pair in every scene kind.
 */
import { describeScene, formatQuery, queryHasHeldOut, type Query } from './captions.js';
import { COLOR_NAMES, HELD_OUT, SHAPE_NAMES } from './palette.js';
import { mixSeed, mulberry32, pick } from './rng.js';
import { CAPABILITIES, RELATIONS, generateScene } from './scene.js';

export interface Prompt {
  caption: string;
  query: Query;
}

/**
 * `perCapability` prompts for each of single, counting, relations and text, none naming a held-out pair, then
 * `perHeldOut` for each held-out pair (rotating through single, counting and relations). Sizes are drawn at S = 64;
 * captions do not depend on the canvas side.
 */
export function evaluationPrompts(perCapability = 25, perHeldOut = 6, seed = 2021): Prompt[] {
  const prompts: Prompt[] = [];
  for (const [c, capability] of CAPABILITIES.entries()) {
    for (let i = 0, n = 0; n < perCapability; i++) {
      const rand = mulberry32(mixSeed(seed, c * 1_000_003 + i));
      const query = describeScene(generateScene(64, capability, rand), rand);
      const caption = formatQuery(query, (options) => pick(rand, options));
      if (queryHasHeldOut(query)) continue;
      prompts.push({ caption, query });
      n++;
    }
  }
  const rand = mulberry32(mixSeed(seed, 0x4e1d));
  for (const [color, shape] of HELD_OUT) {
    for (let k = 0; k < perHeldOut; k++) {
      let query: Query;
      if (k % 3 === 0) query = { capability: 'single', object: k % 2 ? { color, shape } : { color, shape, size: rand() < 0.5 ? 'small' : 'large' } };
      else if (k % 3 === 1) query = { capability: 'counting', count: rand() < 0.5 ? 2 : 3, color, shape };
      else {
        let other = { color: pick(rand, COLOR_NAMES), shape: pick(rand, SHAPE_NAMES) };
        while (other.color === color && other.shape === shape) other = { color: pick(rand, COLOR_NAMES), shape: pick(rand, SHAPE_NAMES) };
        const held = { color, shape };
        const [a, b] = rand() < 0.5 ? [held, other] : [other, held];
        query = { capability: 'relations', a, relation: pick(rand, RELATIONS), b };
      }
      prompts.push({ caption: formatQuery(query, (options) => pick(rand, options)), query });
    }
  }
  return prompts;
}
