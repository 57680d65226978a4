/**
 * Targets whose reader only takes a path write each input to a file in ONE folder per process,
 * `<tmpdir>/dalle-fuzz-<pid>`, created on first use and removed when the process exits. A fuzzer killed by a signal
 * never runs exit handlers, so folders of processes that no longer exist are swept when a new one is created.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'dalle-fuzz-';
let folder: string | undefined;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sweepStaleFolders(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^dalle-fuzz-([1-9][0-9]{0,9})$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // another user's, or being removed by someone else: not ours to insist on
    }
  }
}

/** This process's temp folder (created on first call). */
export function tempFolder(): string {
  if (folder === undefined) {
    sweepStaleFolders();
    const path = join(tmpdir(), `${PREFIX}${process.pid}`);
    mkdirSync(path, { recursive: true });
    process.once('exit', () => rmSync(path, { recursive: true, force: true }));
    folder = path;
  }
  return folder;
}

/** `<temp folder>/<name>`, a folder of its own (created on first call), for targets that need several files. */
export function tempSubfolder(name: string): string {
  const path = join(tempFolder(), name);
  mkdirSync(path, { recursive: true });
  return path;
}

/** Overwrites `<temp folder>/<name>` with `data` and returns its path; `name` may start with a subfolder. */
export function writeTemp(name: string, data: Uint8Array | string): string {
  const path = join(tempFolder(), name);
  writeFileSync(path, data);
  return path;
}
