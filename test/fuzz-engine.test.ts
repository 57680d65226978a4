/**
 * `npm run fuzz` itself: Jazzer.js loads here (scripts/fuzz/jazzer-setup.mjs), instruments the targets and the
 * readers, and reports what it finds. A fuzzer that silently found nothing because it never ran would pass every
 * replay test, so these run it for real: a planted bug must be found, and a real target must gain coverage.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { tempDir } from './helpers/data-fixtures.js';

const FUZZ = fileURLToPath(new URL('../scripts/fuzz.mjs', import.meta.url));

interface TargetSummary {
  target: string;
  executions: number;
  coverage: number;
  findings: string[];
  exit: number | string | null;
}

function fuzz(args: string[], work: string): { status: number | null; stderr: string; summary: TargetSummary[] } {
  const run = spawnSync(process.execPath, [FUZZ, '--work', work, ...args], { encoding: 'utf8', timeout: 120_000 });
  const summaryFile = join(work, 'summary.json');
  const summary = readdirSync(work).includes('summary.json') ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as TargetSummary[]) : [];
  return { status: run.status, stderr: run.stderr, summary };
}

test('a planted bug behind a 4-byte magic is found, written to findings/ and fails the run', (t) => {
  const dir = tempDir('fuzz-engine');
  const targets = join(dir, 'targets');
  mkdirSync(targets);
  writeFileSync(join(targets, 'package.json'), '{ "type": "module" }');
  // Compared byte by byte: libFuzzer's comparison feedback, not luck, has to lead it there.
  writeFileSync(join(targets, 'planted.ts'), `
    export function fuzz(data: Buffer): void {
      if (data.length >= 4 && data[0] === 0x44 && data[1] === 0x41 && data[2] === 0x4c && data[3] === 0x4c) throw new RangeError('planted');
    }
  `);
  const run = fuzz(['--targets', targets, '--runs', '2000000', '--seed', '7', 'planted'], join(dir, 'work'));
  t.is(run.status, 1, run.stderr);
  const [planted] = run.summary;
  t.is(planted?.findings.length, 1, run.stderr);
  t.true((planted?.executions ?? Infinity) < 2_000_000, 'stopped at the finding');
  const finding = readFileSync(join(dir, 'work', 'findings', 'planted', planted!.findings[0]!));
  t.is(finding.subarray(0, 4).toString('latin1'), 'DALL');
  t.regex(run.stderr, /planted \.\.\. \d+ executions .*FINDINGS: crash-/);
});

test('a reader target runs instrumented: executions counted, coverage of lib/ and the decoder grows, no findings', (t) => {
  const dir = tempDir('fuzz-engine');
  const run = fuzz(['--runs', '400', '--seed', '1', 'png'], dir);
  t.is(run.status, 0, run.stderr);
  const [png] = run.summary;
  t.is(png?.target, 'png');
  t.true((png?.executions ?? 0) >= 400, JSON.stringify(png));
  t.true((png?.coverage ?? 0) > 100, `coverage ${png?.coverage}: lib/ and pngjs are instrumented`);
  t.deepEqual(png?.findings, []);
});
