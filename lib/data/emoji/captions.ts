/**
 * Caption phrasings for emoji. Several templates, picked per example by a seeded RNG, so the transformer learns
 * the name rather than one fixed sentence; some mention the set and the category so prompts such as "a google
 * emoji of a red apple" have something to match.
 */
import type { EmojiSet } from './catalog.js';

export interface CaptionParts {
  name: string;
  set: EmojiSet;
  category: string;
}

/** Names that are already plural or counted read wrongly after "a": "a two hearts". */
const NO_ARTICLE = /^(two|three|four|people|men|women|couple with|[0-9])\b/;

function withArticle(name: string): string {
  if (NO_ARTICLE.test(name)) return name;
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}

export const PHRASINGS: ReadonlyArray<(p: CaptionParts) => string> = [
  (p) => p.name,
  (p) => `${withArticle(p.name)} emoji`,
  (p) => `an emoji of ${withArticle(p.name)}`,
  (p) => `a ${p.set} emoji of ${withArticle(p.name)}`,
  (p) => `${p.name}, ${p.set} emoji style`,
  (p) => `${p.name} (${p.category})`,
  (p) => `${withArticle(p.category)} emoji: ${p.name}`,
];

/** One phrasing chosen by `rand`; templates with a category are skipped for entries that have none. */
export function caption(parts: CaptionParts, rand: () => number): string {
  const pool = parts.category === '' ? PHRASINGS.slice(0, 5) : PHRASINGS;
  const pick = pool[Math.floor(rand() * pool.length)]!;
  return pick(parts);
}
