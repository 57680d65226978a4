/** Messages between the Dalle object (main thread) and its generation worker. */
import type { GenerateRequest } from './generate.js';
import type { Backend, GenerateProgress, GenerateResult, ModelInfo } from './types.js';

export interface WorkerInit {
  manifest: string;
  backend: Backend;
  /** Int32 [1]: the id of the request to abort, written by the main thread, polled by the worker between tokens. */
  abort: SharedArrayBuffer;
}

export type ToWorker = { type: 'generate'; id: number; prompt: string; options: GenerateRequest } | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'progress'; id: number; progress: GenerateProgress }
  | { type: 'done'; id: number; result: GenerateResult }
  | { type: 'failed'; id: number | null; code: string; message: string; aborted: boolean }
  | { type: 'closed' };
