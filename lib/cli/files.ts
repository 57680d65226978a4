/**
 * Output paths of the commands, checked before any work starts: a training run that would fail to write its
 * weights after three hours must fail in the first second, with a message and not a stack trace.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { DalleError } from '../errors.js';

/** Why `path` cannot be made a folder (an errno code of mkdir), said for a person. */
function folderProblem(path: string, cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    // mkdir -p reports a file in the way as EEXIST (or ENOTDIR further down): name the file.
    for (let p = path; p !== dirname(p); p = dirname(p)) {
      try {
        if (!statSync(p).isDirectory()) return `${p} is a file, not a folder`;
      } catch {
        // not there yet: a parent is the culprit
      }
    }
  }
  if (code === 'EACCES' || code === 'EPERM') return `permission denied creating ${path}`;
  if (code === 'EROFS') return `${path} is on a read-only file system`;
  return `cannot create the folder ${path} (${code ?? (cause as Error).message})`;
}

/**
 * Makes sure `file` can be written: its folder exists (created if need be) and is writable, and `file` itself is
 * not a folder. Returns the absolute path. `flag` names the option in messages (`-o`).
 */
export function prepareOutputFile(file: string, flag: string): string {
  const abs = resolve(file);
  const dir = dirname(abs);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    throw new DalleError('E_INVALID_ARGUMENT', `${flag} ${file}: ${folderProblem(dir, cause)}`, { cause });
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (cause) {
    throw new DalleError('E_INVALID_ARGUMENT', `${flag} ${file}: the folder ${dir} is not writable`, { cause });
  }
  let isFolder = false;
  try {
    isFolder = statSync(abs).isDirectory();
  } catch {
    // does not exist yet: fine
  }
  if (isFolder) throw new DalleError('E_INVALID_ARGUMENT', `${flag} ${file} is a folder; give a file name`);
  return abs;
}

/** Makes sure `folder` exists (created if need be) and is writable; returns the absolute path. */
export function prepareOutputFolder(folder: string, flag: string): string {
  const abs = resolve(folder);
  try {
    mkdirSync(abs, { recursive: true });
  } catch (cause) {
    throw new DalleError('E_INVALID_ARGUMENT', `${flag} ${folder}: ${folderProblem(abs, cause)}`, { cause });
  }
  try {
    accessSync(abs, constants.W_OK);
  } catch (cause) {
    throw new DalleError('E_INVALID_ARGUMENT', `${flag} ${folder}: not writable`, { cause });
  }
  return abs;
}
