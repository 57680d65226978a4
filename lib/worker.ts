/**
 * Starting a worker thread on one of our modules: the compiled .js normally; under tsx (tests, benchmarks) the .ts
 * source, through a small bootstrap that registers tsx inside the worker first. Inheriting `--import tsx` is not
 * enough on Node 20: its loader hooks do not reach a worker's entry module ("Unknown file extension .ts").
 */
import { Worker } from 'node:worker_threads';

/**
 * The parent's Node flags minus those that only make sense for its own entry: a worker inherits them, and
 * `--input-type` (from `node --input-type=module -e '…'`) makes a worker started from a file fail.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg === '--input-type') i++;
    else if (!arg.startsWith('--input-type=')) out.push(arg);
  }
  return out;
}

/** `moduleUrl` is the .js URL next to the caller (`new URL('./x.js', import.meta.url)`); its .ts twin is used under tsx. */
export function spawnModuleWorker(moduleUrl: URL, workerData: unknown): Worker {
  if (!moduleUrl.href.endsWith('.js')) throw new Error(`spawnModuleWorker: ${moduleUrl.href} is not a .js module URL`);
  const source = new URL(moduleUrl.href.replace(/\.js$/, '.ts'));
  if (!import.meta.url.endsWith('.ts')) return new Worker(moduleUrl, { workerData, execArgv: workerExecArgv() });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(source.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
