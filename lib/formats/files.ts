/**
 * Reading a file the user named, with errors that say what is wrong with the path: a folder given as a file is
 * "a folder, not a file" (not E_NOT_FOUND, not "invalid JSON"), and text that is not UTF-8 is refused rather than
 * decoded into U+FFFD characters nobody asked for.
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { DalleError } from '../errors.js';

/** The DalleError for a failed read of `path` (ENOENT → E_NOT_FOUND; a folder, a permission → E_INVALID_ARGUMENT). */
export function readError(path: string, cause: unknown): DalleError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new DalleError('E_NOT_FOUND', `${path}: no such file`, { cause });
  if (code === 'ENOTDIR') return new DalleError('E_NOT_FOUND', `${path}: no such file (a part of the path is a file, not a folder)`, { cause });
  if (code === 'EISDIR') return new DalleError('E_INVALID_ARGUMENT', `${path} is a folder, not a file`, { cause });
  if (code === 'EACCES' || code === 'EPERM') return new DalleError('E_INVALID_ARGUMENT', `${path}: permission denied`, { cause });
  return new DalleError('E_INVALID_ARGUMENT', `${path}: cannot read it (${code ?? (cause as Error)?.message ?? String(cause)})`, { cause });
}

export function readFileBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw readError(path, cause);
  }
}

export async function readFileBytesAsync(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw readError(path, cause);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text (a leading byte-order mark dropped), or E_INVALID_ARGUMENT naming the file and the first bad byte. */
export function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new DalleError('E_INVALID_ARGUMENT', `${source} is not UTF-8 text (first invalid byte at offset ${firstInvalidUtf8(bytes)})`);
  }
}

export function readTextFile(path: string): string {
  return decodeUtf8(readFileBytes(path), path);
}

export async function readTextFileAsync(path: string): Promise<string> {
  return decodeUtf8(await readFileBytesAsync(path), path);
}

/** Offset of the first byte of the first ill-formed UTF-8 sequence (as the Unicode standard's table defines them). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: sequence length and the range its second byte must fall in (no overlongs, no surrogates, ≤ U+10FFFF).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n;
  }
  return b.length;
}

/**
 * Deletes `<path>.tmp-<pid>` files left by writers that were killed mid-write (SIGKILL, power loss): atomic writes
 * go to such a file and rename it over `path`, so a process that dies in between leaves one behind. Only files whose
 * process is gone are removed — a live writer's (this one's included) is never touched. Returns the names removed.
 */
export function removeStaleTemporaries(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pidText = name.slice(prefix.length);
    if (!/^[1-9][0-9]{0,9}$/.test(pidText)) continue;
    const pid = Number(pidText);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // another process cleaned it first, or it is not ours to remove: leave it
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user, so it may be writing.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
