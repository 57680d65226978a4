#!/usr/bin/env node
/**
 * npm run fuzz -- [--seconds N | --runs N] [--seed S] [--timeout MS] [--targets DIR] [--work DIR] [--list] [target ...]
 *
 * Coverage-guided fuzzing of the readers with Jazzer.js (libFuzzer driving instrumented JS). Each target in
 * test/fuzz/targets/<name>.ts runs in its own process for --seconds (default 60) or --runs executions, starting from
 * the seeds in test/fuzz/corpus/<name> and the once-crashing inputs in test/fuzz/regressions/<name>. New inputs that
 * reach new code go to .fuzz/corpus/<name>; a crash, hang or memory blow-up goes to .fuzz/findings/<name>/ and makes
 * the run exit 1. A finding becomes a regression: minimise it, fix the reader, copy the input into
 * test/fuzz/regressions/<name>/ (npm test replays it from then on).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { prepareJazzer } from './fuzz/jazzer-setup.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** What is instrumented for coverage besides the targets: our readers and the image decoders we depend on. */
const INSTRUMENTED = ['lib/', 'node_modules/pngjs/', 'node_modules/jpeg-js/'].map((p) => join(root, p));

/** The libFuzzer dictionaries (test/fuzz/dict) each target's inputs are spelled in. */
const DICTIONARIES = {
  png: ['png'],
  jpeg: ['jpeg'],
  safetensors: ['safetensors', 'json'],
  torch: ['pickle', 'zip'],
  pickle: ['pickle'],
  zip: ['zip'],
  'tokenizer-json': ['json'],
  'gpt2-vocab': ['json'],
  manifest: ['json'],
  webdataset: ['tar', 'png', 'jpeg'],
  jsonl: ['json', 'png'],
};

/** One dictionary file for `target` (libFuzzer takes one -dict), or null when it has none. */
function dictionaryFor(target, workDir) {
  const parts = (DICTIONARIES[target] ?? []).map((name) => join(root, 'test', 'fuzz', 'dict', `${name}.dict`)).filter((path) => existsSync(path));
  if (parts.length === 0) return null;
  const combined = join(workDir, 'dict', `${target}.dict`);
  mkdirSync(dirname(combined), { recursive: true });
  writeFileSync(combined, parts.map((path) => readFileSync(path, 'utf8')).join('\n'));
  return combined;
}

function usage(message) {
  if (message) console.error(`fuzz: ${message}`);
  console.error('usage: npm run fuzz -- [--seconds N | --runs N] [--seed S] [--timeout MS] [--targets DIR] [--work DIR] [--list] [target ...]');
  process.exit(2);
}

function allTargets(targetsDir) {
  return readdirSync(targetsDir)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

function positiveInteger(flag, value) {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) usage(`${flag} needs a non-negative integer, got ${value}`);
  return n;
}

/** The last libFuzzer status line and the final run count, from its stderr. */
function summarise(target, log, wallSeconds, findingsDir, earlierFindings) {
  const statusLines = log.split('\n').filter((line) => /^#\d+\s/.test(line));
  const last = statusLines.at(-1) ?? '';
  const done = /Done (\d+) runs in (\d+) second/.exec(log);
  const findings = readdirSync(findingsDir).filter((name) => !earlierFindings.includes(name));
  return {
    target,
    executions: done ? Number(done[1]) : Number(/^#(\d+)/.exec(last)?.[1] ?? 0),
    seconds: Math.round(wallSeconds),
    coverage: Number(/cov: (\d+)/.exec(last)?.[1] ?? 0),
    features: Number(/ft: (\d+)/.exec(last)?.[1] ?? 0),
    corpus: /corp: (\d+\/\S+)/.exec(last)?.[1] ?? '',
    findings,
  };
}

function fuzzOne(target, targetsDir, workDir, options, env) {
  const source = readFileSync(join(targetsDir, `${target}.ts`), 'utf8');
  const asyncTarget = /export\s+async\s+function\s+fuzz\b/.test(source);
  const corpusDir = join(workDir, 'corpus', target);
  const findingsDir = join(workDir, 'findings', target);
  mkdirSync(corpusDir, { recursive: true });
  mkdirSync(findingsDir, { recursive: true });
  const earlierFindings = readdirSync(findingsDir);
  const seedDirs = ['corpus', 'regressions'].map((d) => join(root, 'test', 'fuzz', d, target)).filter((d) => existsSync(d));
  const jazzer = join(root, 'node_modules', '@jazzer.js', 'core', 'dist', 'cli.js');
  // Jazzer appends .js to a target without a JS extension; tsx then resolves the .ts file.
  const args = [jazzer, join(targetsDir, target), corpusDir, ...seedDirs, `--timeout=${options.timeout}`];
  if (!asyncTarget) args.push('--sync');
  for (const path of [...INSTRUMENTED, `${targetsDir}/`]) args.push('-i', path);
  args.push('--', `-artifact_prefix=${findingsDir}/`, '-rss_limit_mb=3072', '-print_final_stats=1');
  const dictionary = dictionaryFor(target, workDir);
  if (dictionary !== null) args.push(`-dict=${dictionary}`);
  args.push(options.runs !== undefined ? `-runs=${options.runs}` : `-max_total_time=${options.seconds}`);
  if (options.seed !== undefined) args.push(`-seed=${options.seed}`);

  const nodeOptions = ['--import=tsx', env.NODE_OPTIONS].filter(Boolean).join(' ');
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const logFile = join(workDir, `${target}.log`);
    child.stdout.on('data', (b) => (log += b));
    child.stderr.on('data', (b) => (log += b));
    child.on('close', (code, signal) => {
      writeFileSync(logFile, log);
      const result = summarise(target, log, (Date.now() - started) / 1000, findingsDir, earlierFindings);
      done({ ...result, exit: signal ?? code, log: logFile });
    });
  });
}

const { values, positionals } = parseArgs({
  options: {
    seconds: { type: 'string' },
    runs: { type: 'string' },
    seed: { type: 'string' },
    timeout: { type: 'string', default: '5000' },
    targets: { type: 'string', default: join(root, 'test', 'fuzz', 'targets') },
    work: { type: 'string', default: join(root, '.fuzz') },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: true,
});
if (values.help) usage();
const targetsDir = resolve(values.targets);
const workDir = resolve(values.work);
if (!existsSync(targetsDir)) usage(`no targets folder ${targetsDir}`);
const known = allTargets(targetsDir);
if (values.list) {
  for (const t of known) console.log(t);
  process.exit(0);
}
const unknown = positionals.filter((t) => !known.includes(t));
if (unknown.length > 0) usage(`unknown target ${unknown.join(', ')}; targets: ${known.join(', ')}`);
if (values.seconds !== undefined && values.runs !== undefined) usage('give --seconds or --runs, not both');
const options = {
  seconds: values.seconds !== undefined ? positiveInteger('--seconds', values.seconds) : 60,
  runs: values.runs !== undefined ? positiveInteger('--runs', values.runs) : undefined,
  seed: values.seed !== undefined ? positiveInteger('--seed', values.seed) : undefined,
  timeout: positiveInteger('--timeout', values.timeout),
};

let env;
try {
  env = prepareJazzer(workDir);
} catch (err) {
  console.error(`fuzz: ${err.message}`);
  process.exit(2);
}

const results = [];
for (const target of positionals.length > 0 ? positionals : known) {
  process.stderr.write(`fuzz: ${target} ...`);
  const result = await fuzzOne(target, targetsDir, workDir, options, env);
  results.push(result);
  process.stderr.write(` ${result.executions} executions in ${result.seconds} s, cov ${result.coverage}, ` +
    `${result.findings.length === 0 ? 'no findings' : `FINDINGS: ${result.findings.join(', ')} (log ${result.log})`}\n`);
}
writeFileSync(join(workDir, 'summary.json'), `${JSON.stringify(results, null, 2)}\n`);
console.table(results.map(({ target, executions, seconds, coverage, features, corpus, findings }) => ({ target, executions, seconds, coverage, features, corpus, findings: findings.length })));
const failed = results.filter((r) => r.findings.length > 0 || (r.exit !== 0 && r.exit !== null));
if (failed.length > 0) {
  console.error(`fuzz: ${failed.map((r) => `${r.target} (exit ${r.exit}, ${r.findings.length} findings, log ${r.log})`).join('; ')}`);
  process.exit(1);
}
