import { loadGpt2 } from '../../../lib/tokenizer/formats.js';
import { expectDalleError } from './_expect.js';
import { writeTemp } from './_temp.js';
import { checkTokenizer } from './_tokenizer.js';

export const description = 'loadGpt2 on vocab.json and merges.txt (the input split at its first 0x00 byte), then encode/decode and a tokenizer.json round trip';

export function fuzz(data: Buffer): void {
  const split = data.indexOf(0);
  const vocab = writeTemp('vocab.json', split < 0 ? data : data.subarray(0, split));
  const merges = writeTemp('merges.txt', split < 0 ? Buffer.alloc(0) : data.subarray(split + 1));
  const tok = expectDalleError(() => loadGpt2(vocab, merges));
  if (tok !== undefined) checkTokenizer(tok, 'vocab.json + merges.txt');
}
