/** What a tokenizer that a reader accepted must do: encode any text to ids in range, and decode them back. */
import type { BpeTokenizer } from '../../../lib/tokenizer/bpe.js';
import { fromHfJson, toHfJson } from '../../../lib/tokenizer/formats.js';
import { normalizeCaption } from '../../../lib/tokenizer/normalize.js';
import { invariant } from './_expect.js';

/** Short, but with spaces, digits, punctuation, accents, a CJK word and an emoji with a joiner. */
const SAMPLES = ['a red cube', '  Two  BLUE spheres,\tleft of 3 cubes!  ', 'café crème — 東京 👩‍👩‍👧 ok'];

function checkEncodes(tok: BpeTokenizer, what: string): Int32Array[] {
  return SAMPLES.map((text) => {
    const ids = tok.encode(text);
    for (const id of ids) invariant(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, () => `${what}: encode gave id ${id}, vocabulary size ${tok.vocabSize}`);
    const want = tok.model.normalizer === 'caption' ? normalizeCaption(text) : text;
    invariant(tok.decode(ids) === want, () => `${what}: decode(encode(${JSON.stringify(text)})) is ${JSON.stringify(tok.decode(ids))}`);
    return ids;
  });
}

/** Encodes and decodes the samples, and checks that writing the tokenizer as tokenizer.json and reading it back changes nothing. */
export function checkTokenizer(tok: BpeTokenizer, what: string): void {
  // encode must not throw for any text once the file was accepted: a DalleError here is a finding too.
  const ids = checkEncodes(tok, what);
  const back = fromHfJson(toHfJson(tok), `${what} rewritten`);
  const again = checkEncodes(back, `${what} rewritten`);
  invariant(ids.every((a, i) => Buffer.compare(Buffer.from(a.buffer), Buffer.from(again[i]!.buffer)) === 0), () => `${what}: toHfJson and back encodes differently`);
}
