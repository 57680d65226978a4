/**
 * Every fuzz target (test/fuzz/targets) replays its seeds and its regressions — inputs that once crashed, hung or
 * exhausted memory — and a fixed set of deterministic mutants of its seeds, in a child process each: a crash
 * (SIGABRT in zlib, an out-of-memory kill) shows as a signal instead of taking the suite down, and the child's
 * progress on stderr names the input it died on. Any exception other than a DalleError is a failure, and so is any
 * input slower than SLOW_MS. The corpus itself must be what scripts/fuzz/make-corpus.ts makes.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';

const ROOT = join(import.meta.dirname, '..');
const FUZZ = join(ROOT, 'test', 'fuzz');
const REQUIRED_TARGETS = ['png', 'jpeg', 'safetensors', 'torch', 'pickle', 'zip', 'tokenizer-json', 'gpt2-vocab', 'manifest', 'webdataset', 'jsonl'];
/** Mutants per target, spread over its seeds; the run seed is fixed so that every run checks the same inputs. */
const MUTANTS_PER_TARGET = 200;
const MUTATION_SEED = 24;
const SLOW_MS = 2000;
const CHILD_TIMEOUT_MS = 120_000;
/** A child with the engine loaded holds ~150 MB; an input that needs gigabytes is the bug the limits exist for. */
const MAX_PEAK_RSS_MB = 1024;
/** Two children at a time: the suite's machines have two cores, and ava runs two test files at once already. */
const PARALLEL_CHILDREN = 2;

const targets = readdirSync(join(FUZZ, 'targets'))
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();
const filesIn = (folder: string): string[] => {
  try {
    return readdirSync(folder).filter((f) => !f.startsWith('.'));
  } catch {
    return [];
  }
};

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

let running = 0;
const waiting: Array<() => void> = [];

/** Runs a script under tsx in a child, at most PARALLEL_CHILDREN at once. */
async function runChild(args: string[]): Promise<ChildResult> {
  if (running >= PARALLEL_CHILDREN) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await new Promise<ChildResult>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      // Progress lines pile up: keep the tail, which names the input a dead child was on.
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, CHILD_TIMEOUT_MS);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, timedOut, stdout, stderr });
      });
    });
  } finally {
    running--;
    waiting.shift()?.();
  }
}

interface ReplayResult {
  target: string;
  inputs: number;
  mutants: number;
  failures: Array<{ file: string; error: string; seed?: number; mutation?: number; saved?: string }>;
  slow: Array<{ file: string; ms: number }>;
  slowestMs: number;
  slowestFile: string | null;
  peakRssMB: number;
}

function lastInput(stderr: string): string {
  return stderr.split('\n').filter((l) => l.startsWith('replay: ')).at(-1)?.slice('replay: '.length) ?? '(none started)';
}

test('every target the runner relies on exists, exports fuzz and a description, and has at least 3 seeds', async (t) => {
  t.deepEqual(REQUIRED_TARGETS.filter((name) => !targets.includes(name)), [], 'missing targets');
  for (const target of targets) {
    const mod = (await import(pathToFileURL(join(FUZZ, 'targets', `${target}.ts`)).href)) as Record<string, unknown>;
    t.deepEqual(Object.keys(mod).sort(), ['description', 'fuzz'], `${target} exports exactly fuzz and description`);
    t.is(typeof mod.fuzz, 'function', target);
    t.true(typeof mod.description === 'string' && mod.description.length > 0 && !mod.description.includes('\n'), `${target}: a one-line description`);
    t.true(filesIn(join(FUZZ, 'corpus', target)).length >= 3, `${target} has ${filesIn(join(FUZZ, 'corpus', target)).length} seeds`);
  }
});

test('the corpus and the regressions are exactly what scripts/fuzz/make-corpus.ts makes', async (t) => {
  const r = await runChild(['scripts/fuzz/make-corpus.ts', '--check']);
  t.is(r.code, 0, `${r.stderr}${r.stdout}`);
});

for (const target of targets) {
  test(`${target}: seeds, regressions and ${MUTANTS_PER_TARGET} mutants only ever throw DalleError, each in under ${SLOW_MS} ms`, async (t) => {
    const seeds = filesIn(join(FUZZ, 'corpus', target)).length;
    const regressions = filesIn(join(FUZZ, 'regressions', target)).length;
    const perSeed = Math.ceil(MUTANTS_PER_TARGET / Math.max(1, seeds));
    const r = await runChild(['scripts/fuzz/replay.ts', target, '--mutate', String(perSeed), '--seed', String(MUTATION_SEED), '--slow-ms', String(SLOW_MS), '--progress']);
    const died = r.timedOut ? `timed out after ${CHILD_TIMEOUT_MS} ms` : r.signal ? `was killed by ${r.signal}` : r.code !== 0 ? `exited with ${r.code}` : null;
    if (died !== null) {
      t.fail(`the replay of ${target} ${died} on ${lastInput(r.stderr)}\n${r.stderr.split('\n').filter((l) => !l.startsWith('replay: ')).slice(-40).join('\n')}`);
      return;
    }
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ReplayResult;
    t.is(result.target, target);
    t.true(result.inputs >= seeds + regressions + seeds * perSeed, `${result.inputs} inputs run`);
    t.deepEqual(
      result.failures.map((f) => `${f.file}${f.mutation === undefined ? '' : ` (seed ${f.seed}, mutation ${f.mutation}, saved as ${f.saved})`}:\n${f.error}`),
      [],
      'inputs that threw something other than a DalleError',
    );
    t.deepEqual(result.slow.map((s) => `${s.file}: ${s.ms} ms`), [], `inputs slower than ${SLOW_MS} ms`);
    t.true(result.slowestMs < SLOW_MS, `slowest: ${result.slowestFile} in ${result.slowestMs} ms`);
    t.true(result.peakRssMB < MAX_PEAK_RSS_MB, `the replay peaked at ${result.peakRssMB} MB`);
  });
}
