/**
 * GPT-2's reversible byte <-> character table. Byte-level BPE needs every byte to be a visible, non-space character
 * so that tokens can live in JSON vocabularies and "a b" merge lines; printable Latin-1 bytes stand for themselves and
 * the other 68 are shifted to U+0100.. in byte order. Must match bytes_to_unicode() exactly, or GPT-2 and HF files
 * would mean different bytes.
 */
import { DalleError } from '../errors.js';

function buildTable(): string[] {
  const table = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return table;
}

export const byteToChar: readonly string[] = Object.freeze(buildTable());
export const charToByte: ReadonlyMap<string, number> = new Map(byteToChar.map((c, b) => [c, b]));

const utf8 = new TextEncoder();

/** The byte-level spelling of a string's UTF-8 bytes (lone surrogates encode as U+FFFD, as TextEncoder does). */
export function toByteLevel(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += byteToChar[b]!;
  return out;
}

/** The bytes a byte-level string stands for; a character outside the alphabet is an error, not a silent drop. */
export function fromByteLevel(symbols: string): Uint8Array {
  const out = new Uint8Array(symbols.length);
  for (let i = 0; i < symbols.length; i++) {
    const b = charToByte.get(symbols[i]!);
    if (b === undefined) {
      const code = symbols.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0');
      throw new DalleError('E_INVALID_ARGUMENT', `${JSON.stringify(symbols)}: U+${code} is not in the byte-level alphabet`);
    }
    out[i] = b;
  }
  return out;
}
