/**
 * The Node API: a model in a worker thread, so generating never blocks the app's event loop.
 *
 *   await using dalle = await Dalle.load();            // the model shipped in the package
 *   const { images } = await dalle.generate('a red circle', { n: 16, keep: 4 });
 *   writeFileSync('best.png', images[0].png);
 *
 * Requests queue and run one at a time in the worker; each has its own AbortSignal and progress callback.
 */
import type { Worker } from 'node:worker_threads';

import { buildInfo } from '../engine.js';
import { DalleAbortError, DalleError, type DalleErrorCode } from '../errors.js';
import { spawnModuleWorker } from '../worker.js';
import { defaultModelPath, readManifest } from './model-files.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import type { Backend, GenerateOptions, GenerateResult, LoadOptions, ModelInfo } from './types.js';

interface Pending {
  id: number;
  prompt: string;
  options: GenerateOptions;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  onAbort?: () => void;
}

/** How long dispose() waits for the worker to finish its current token and exit before stopping it by force. */
const CLOSE_GRACE_MS = 30_000;

/**
 * Which backend runs the model. The CUDA backend does not have the transformer's ops yet, so 'auto' is the CPU and an
 * explicit 'cuda' fails with the reason.
 */
export function chooseBackend(requested: LoadOptions['backend'] = 'auto'): Backend {
  if (requested !== 'auto' && requested !== 'cpu' && requested !== 'cuda') {
    throw new DalleError('E_INVALID_ARGUMENT', `backend must be 'auto', 'cpu' or 'cuda', got ${String(requested)}`);
  }
  if (requested !== 'cuda') return 'cpu';
  const info = buildInfo();
  const why = !info.cudaCompiled
    ? 'this binary was built without CUDA'
    : info.cudaDevices === 0
      ? `no CUDA device is usable (${info.cudaError || 'none found'})`
      : 'the CUDA backend does not run the transformer and CLIP ops yet';
  throw new DalleError('E_UNSUPPORTED', `backend 'cuda' cannot run this model: ${why}; use backend 'cpu' or 'auto'`);
}

export class Dalle implements AsyncDisposable {
  readonly info: ModelInfo;
  readonly #worker: Worker;
  readonly #abortFlag: Int32Array;
  readonly #queue: Pending[] = [];
  #running: Pending | null = null;
  #nextId = 1;
  #closing: Promise<void> | null = null;
  #exited = false;

  private constructor(worker: Worker, abortFlag: Int32Array, info: ModelInfo) {
    this.#worker = worker;
    this.#abortFlag = abortFlag;
    this.info = info;
    worker.on('message', (msg: FromWorker) => this.#onMessage(msg));
    worker.on('error', (err) => this.#failAll(new DalleError('E_INTERNAL', `generation worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      this.#exited = true;
      this.#failAll(new DalleError(this.#closing ? 'E_DISPOSED' : 'E_INTERNAL', this.#closing ? 'the model was disposed' : `generation worker exited with code ${code}`));
    });
    worker.unref(); // an idle model does not keep the process alive; a pending request does (see #pump)
  }

  /**
   * Loads a model from its manifest (default: the model shipped in the package) into a new worker thread. Rejects
   * with E_NOT_FOUND / E_INVALID_ARGUMENT for missing or bad files and E_UNSUPPORTED for a backend that cannot run it.
   */
  static async load(path: string = defaultModelPath(), options: LoadOptions = {}): Promise<Dalle> {
    const backend = chooseBackend(options.backend);
    readManifest(path); // fail here, with the path, before starting a thread
    const abort = new SharedArrayBuffer(4);
    const init: WorkerInit = { manifest: path, backend, abort };
    const worker = spawnModuleWorker(new URL('./generate-worker.js', import.meta.url), init);
    let onMessage!: (msg: FromWorker) => void;
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    const info = await new Promise<ModelInfo>((resolve, reject) => {
      onMessage = (msg) => {
        if (msg.type === 'ready') resolve(msg.info);
        else if (msg.type === 'failed') reject(new DalleError(msg.code as DalleErrorCode, msg.message));
      };
      onError = (err) => reject(new DalleError('E_LOAD', `generation worker failed to start: ${err.message}`, { cause: err }));
      onExit = (code) => reject(new DalleError('E_LOAD', `generation worker exited with code ${code} while loading`));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    }).finally(() => {
      // Only ours: removeAllListeners() would also drop the Worker's own, which keep its message port referenced.
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    return new Dalle(worker, new Int32Array(abort), info);
  }

  /** The backend running this model. */
  get backend(): Backend {
    return this.info.backend;
  }

  /** Draws `n` samples of `prompt`, ranks them with CLIP and resolves with the best `keep` as PNG files. */
  generate(prompt: string, options: GenerateOptions = {}): Promise<GenerateResult> {
    if (this.#closing) return Promise.reject(new DalleError('E_DISPOSED', 'generate: the model was disposed'));
    if (options.signal?.aborted) return Promise.reject(new DalleAbortError('generation', options.signal.reason));
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      return Promise.reject(new DalleError('E_INVALID_ARGUMENT', 'onProgress must be a function'));
    }
    return new Promise<GenerateResult>((resolve, reject) => {
      const pending: Pending = { id: this.#nextId++, prompt, options, resolve, reject };
      if (options.signal) {
        pending.onAbort = () => this.#settle(pending, new DalleAbortError('generation', options.signal!.reason));
        options.signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#queue.push(pending);
      this.#pump();
    });
  }

  /** Stops the worker once its current token is done and frees the model; queued requests reject with E_DISPOSED. */
  dispose(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #close(): Promise<void> {
    this.#failAll(new DalleError('E_DISPOSED', 'the model was disposed'));
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.ref();
    this.#worker.postMessage({ type: 'close' } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_GRACE_MS)));
    if ((await Promise.race([exited, late])) === 'late') await this.#worker.terminate();
    clearTimeout(timer);
  }

  #pump(): void {
    if (this.#running !== null || this.#closing) return;
    const next = this.#queue.shift();
    if (next === undefined) {
      this.#worker.unref();
      return;
    }
    this.#running = next;
    this.#worker.ref();
    const { signal: _signal, onProgress: _onProgress, ...request } = next.options;
    try {
      this.#worker.postMessage({ type: 'generate', id: next.id, prompt: next.prompt, options: request } satisfies ToWorker);
    } catch (err) {
      // Options that cannot be cloned (a function, a symbol) are the caller's mistake, reported as such; the worker
      // never saw the request, so the next one can go.
      this.#running = null;
      this.#settle(next, new DalleError('E_INVALID_ARGUMENT', `generate: options cannot be sent to the worker (${(err as Error).message})`));
      this.#pump();
    }
  }

  #onMessage(msg: FromWorker): void {
    if (msg.type !== 'progress' && msg.type !== 'done' && msg.type !== 'failed') return;
    const current = this.#running;
    if (current === null || msg.id !== current.id) return; // a request already settled here (aborted, callback threw)
    if (msg.type === 'progress') {
      try {
        current.options.onProgress?.(msg.progress);
      } catch (err) {
        this.#settle(current, err);
      }
      return;
    }
    this.#running = null; // the worker is free whatever the outcome
    if (msg.type === 'done') this.#settle(current, null, msg.result);
    else this.#settle(current, msg.aborted ? new DalleAbortError('generation', current.options.signal?.reason) : new DalleError(msg.code as DalleErrorCode, msg.message));
    this.#pump();
  }

  /** Settles a request once; a running one that is settled early is aborted in the worker. */
  #settle(p: Pending, err: unknown, result?: GenerateResult): void {
    if (p.onAbort) p.options.signal?.removeEventListener('abort', p.onAbort);
    p.onAbort = undefined;
    const queued = this.#queue.indexOf(p);
    if (queued >= 0) this.#queue.splice(queued, 1);
    if (err === null) p.resolve(result!);
    else p.reject(err);
    p.resolve = () => {};
    p.reject = () => {};
    if (this.#running === p && err !== null) Atomics.store(this.#abortFlag, 0, p.id);
  }

  #failAll(err: DalleError): void {
    for (const p of [...this.#queue]) this.#settle(p, err);
    if (this.#running) {
      this.#settle(this.#running, err);
      if (this.#exited) this.#running = null;
    }
  }
}
