/**
 * Replays inputs through one fuzz target and prints ONE JSON line on stdout:
 *
 *   {"target", "inputs", "mutants", "failures": [{file, error, seed?, mutation?, saved?}], "slow": [{file, ms}],
 *    "slowestMs", "slowestFile", "rssGrowthMB", "peakRssMB"}
 *
 *   node --import tsx scripts/fuzz/replay.ts <target> [--mutate N] [--seed S] [--slow-ms MS] [--progress] [files or dirs...]
 *
 * Without files it replays test/fuzz/corpus/<target> and test/fuzz/regressions/<target>. `--mutate N` also runs N
 * mutants of every seed (the corpus folder, or the files given), made by scripts/fuzz/mutate.ts from the seed S
 * (default 1); a failing or slow mutant is written to .fuzz/findings/<target>/ and named by seed and index, so
 * `replay.ts <target> .fuzz/findings/<target>/<file>` reproduces it. `--progress` names each input on stderr
 * before it runs, so a hang or a crash (a signal, no JSON) can be traced to the input that caused it.
 *
 * Exits 0 whatever the inputs do (failures are data); 1 only for a usage error.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { mutantRandom, mutate } from './mutate.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const TARGETS = join(ROOT, 'test', 'fuzz', 'targets');
const STACK_LINES = 6;

interface Options {
  target: string;
  paths: string[];
  mutate: number;
  seed: number;
  slowMs: number;
  progress: boolean;
}

interface Failure {
  file: string;
  error: string;
  seed?: number;
  mutation?: number;
  saved?: string;
}

type FuzzFunction = (data: Buffer) => void | Promise<void>;

function usage(message: string): never {
  process.stderr.write(`replay: ${message}\nusage: node --import tsx scripts/fuzz/replay.ts <target> [--mutate N] [--seed S] [--slow-ms MS] [--progress] [files or dirs...]\n`);
  process.exit(1);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { target: '', paths: [], mutate: 0, seed: 1, slowMs: 1000, progress: false };
  const integer = (flag: string, text: string | undefined): number => {
    if (text === undefined || !/^\d+$/.test(text)) usage(`${flag} needs a non-negative integer`);
    return Number(text);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--mutate') options.mutate = integer(arg, argv[++i]);
    else if (arg === '--seed') options.seed = integer(arg, argv[++i]);
    else if (arg === '--slow-ms') options.slowMs = integer(arg, argv[++i]);
    else if (arg === '--progress') options.progress = true;
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else if (options.target === '') options.target = arg;
    else options.paths.push(arg);
  }
  if (options.target === '') usage('name a target');
  if (!/^[a-z0-9][a-z0-9-]*$/.test(options.target)) usage(`bad target name ${JSON.stringify(options.target)}`);
  return options;
}

/** Every file under `path` (itself if it is a file), in name order; dot-files are left out. */
function filesUnder(path: string, mustExist: boolean): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    if (mustExist) usage(`${path} does not exist`);
    return [];
  }
  if (stat.isFile()) return [path];
  return readdirSync(path)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .flatMap((name) => filesUnder(join(path, name), true));
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return `thrown non-Error: ${String(err)}`;
  const stack = (err.stack ?? `${err.name}: ${err.message}`).split('\n');
  // The stack's first line is the message, which may itself span lines; keep it whole and a few frames after it.
  const frames = stack.filter((line) => /^\s+at /.test(line)).slice(0, STACK_LINES);
  return [`${err.name}: ${err.message}`, ...frames].join('\n');
}

async function loadTarget(target: string): Promise<FuzzFunction> {
  const path = join(TARGETS, `${target}.ts`);
  try {
    statSync(path);
  } catch {
    const known = readdirSync(TARGETS).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3));
    usage(`no target ${target} (known: ${known.join(', ')})`);
  }
  const mod = (await import(pathToFileURL(path).href)) as { fuzz?: unknown; description?: unknown };
  if (typeof mod.fuzz !== 'function' || typeof mod.description !== 'string') usage(`${path} must export fuzz(data) and description`);
  return mod.fuzz as FuzzFunction;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const fuzz = await loadTarget(options.target);
  const explicit = options.paths.length > 0;
  const corpus = join(ROOT, 'test', 'fuzz', 'corpus', options.target);
  const replayed = explicit
    ? options.paths.flatMap((p) => filesUnder(resolve(p), true))
    : [...filesUnder(corpus, false), ...filesUnder(join(ROOT, 'test', 'fuzz', 'regressions', options.target), false)];
  const seeds = options.mutate > 0 ? (explicit ? replayed : filesUnder(corpus, false)) : [];
  const findings = join(ROOT, '.fuzz', 'findings', options.target);
  const label = (file: string): string => relative(ROOT, file) || file;

  const failures: Failure[] = [];
  const slow: Array<{ file: string; ms: number }> = [];
  let inputs = 0;
  let slowestMs = 0;
  let slowestFile: string | null = null;

  // One input: timed, and its exception (anything at all) recorded. Returns whether it failed or was slow.
  const run = async (name: string, data: Buffer): Promise<{ error?: string; ms: number }> => {
    if (options.progress) process.stderr.write(`replay: ${name}\n`);
    inputs++;
    const started = performance.now();
    let error: string | undefined;
    try {
      await fuzz(data);
    } catch (err) {
      error = describeError(err);
    }
    const ms = performance.now() - started;
    if (ms > slowestMs) {
      slowestMs = ms;
      slowestFile = name;
    }
    if (ms > options.slowMs) slow.push({ file: name, ms: Math.round(ms) });
    return error === undefined ? { ms } : { error, ms };
  };

  const rssBefore = process.memoryUsage().rss;
  for (const file of replayed) {
    const outcome = await run(label(file), readFileSync(file));
    if (outcome.error !== undefined) failures.push({ file: label(file), error: outcome.error });
  }
  const seedBytes = seeds.map((file) => readFileSync(file));
  let mutants = 0;
  for (const [s, file] of seeds.entries()) {
    const others = seedBytes.filter((_, j) => j !== s);
    for (let m = 0; m < options.mutate; m++) {
      const data = mutate(seedBytes[s]!, mutantRandom(options.seed, basename(file), m), others);
      const name = `${label(file)}#seed=${options.seed},mutation=${m}`;
      mutants++;
      const outcome = await run(name, data);
      if (outcome.error === undefined && outcome.ms <= options.slowMs) continue;
      mkdirSync(findings, { recursive: true });
      const saved = join(findings, `${basename(file)}.seed-${options.seed}.mutation-${m}${outcome.error === undefined ? '.slow' : ''}`);
      writeFileSync(saved, data);
      if (outcome.error !== undefined) failures.push({ file: label(file), error: outcome.error, seed: options.seed, mutation: m, saved: label(saved) });
    }
  }
  const result = {
    target: options.target,
    inputs,
    mutants,
    failures,
    slow,
    slowestMs: Math.round(slowestMs),
    slowestFile,
    rssGrowthMB: Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // A target may leave handles open (a stream it did not finish); the verdict is printed, so stop here.
  process.exit(0);
}

await main();
