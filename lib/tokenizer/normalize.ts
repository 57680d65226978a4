/**
 * DALL·E's caption normalisation: lower-case, whitespace runs folded to one space, trimmed.
 *
 * No Unicode normalisation (NFC/NFKC) on purpose: decode(encode(x)) must give back the caption's own code points,
 * combining marks included, and a model trained on one form should not silently see another.
 */
export function normalizeCaption(text: string): string {
  // JS \s (the set trim() removes) is Unicode White_Space minus U+0085, plus U+FEFF; formats.ts spells the same set
  // out for HF, whose \s differs. Single spaces are left alone (the
  // pattern matches only runs that are not already one ' '): rewriting every space made this the slowest step.
  return text.toLowerCase().replace(/[^\S ]\s*| \s+/g, ' ').trim();
}
