/**
 * `dalle data emoji`: downloads the emoji packages into a folder of the user's choice. They are ~100 MB of images
 * under their own licences (Twemoji CC-BY 4.0, Noto Emoji Apache 2.0), so they are fetched on request rather than
 * shipped or depended on.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { DalleError } from '../../errors.js';
import { EMOJI_SETS, packageDir } from './catalog.js';

export const EMOJI_PACKAGES: readonly string[] = EMOJI_SETS.map((s) => `emoji-datasource-${s}`);

/**
 * Where `dalle data emoji` installs and the emoji source looks when given no root: $DALLE_DATA_DIR/emoji, else the
 * user's cache folder ($XDG_CACHE_HOME or ~/.cache)/dalle-engine/emoji.
 */
export function defaultEmojiRoot(): string {
  const base = process.env.DALLE_DATA_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dalle-engine');
  return join(base, 'emoji');
}

export interface InstallOptions {
  /** The npm executable; default `npm` on PATH. */
  npm?: string;
  /** Receives npm's output as it comes, for a progress display. */
  onOutput?: (chunk: string) => void;
}

/**
 * Runs `npm install --no-save` of both packages into `dir`/node_modules and checks they can be opened.
 * `--prefix` pins the target: without it npm walks up to the nearest package.json and would install into
 * whatever project encloses `dir`.
 */
export async function installEmojiPackages(dir: string, options: InstallOptions = {}): Promise<void> {
  const target = resolve(dir);
  mkdirSync(target, { recursive: true });
  const args = ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', target, ...EMOJI_PACKAGES];
  const npm = options.npm ?? 'npm';
  let tail = '';
  const code = await new Promise<number | null>((done, fail) => {
    // npm is a .cmd script on Windows, which spawn only runs through a shell.
    const child = spawn(npm, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    const take = (chunk: Buffer): void => {
      const s = chunk.toString();
      tail = (tail + s).slice(-2000);
      options.onOutput?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err: NodeJS.ErrnoException) => {
      fail(
        err.code === 'ENOENT'
          ? new DalleError('E_NOT_FOUND', `cannot run ${npm}: not found on PATH (npm is needed to download the emoji packages)`)
          : new DalleError('E_INTERNAL', `cannot run ${npm}: ${err.message}`, { cause: err }),
      );
    });
    child.on('close', done);
  });
  if (code !== 0) {
    throw new DalleError('E_INTERNAL', `npm install of ${EMOJI_PACKAGES.join(', ')} into ${target} failed (exit ${code}):\n${tail.trim()}`);
  }
  for (const set of EMOJI_SETS) packageDir(target, set);
}
