import { decodeUtf8 } from '../../../lib/formats/files.js';
import { fromHfJson } from '../../../lib/tokenizer/formats.js';
import { expectDalleError } from './_expect.js';
import { checkTokenizer } from './_tokenizer.js';

export const description = 'fromHfJson on the bytes decoded as loadHfJson does (strict UTF-8), then encode/decode and a tokenizer.json round trip';

export function fuzz(data: Buffer): void {
  const text = expectDalleError(() => decodeUtf8(data, 'tokenizer.json'));
  if (text === undefined) return;
  const tok = expectDalleError(() => fromHfJson(text, 'tokenizer.json'));
  if (tok !== undefined) checkTokenizer(tok, 'tokenizer.json');
}
