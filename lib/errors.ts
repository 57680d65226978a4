/** Codes carried by every error the engine throws; native Status codes map one to one. */
export type DalleErrorCode =
  | 'E_INVALID_ARGUMENT'
  | 'E_DTYPE'
  | 'E_DEVICE'
  | 'E_EMPTY_TENSOR'
  | 'E_DISPOSED'
  | 'E_NON_FINITE'
  | 'E_OUT_OF_MEMORY'
  | 'E_UNSUPPORTED'
  | 'E_NOT_FOUND'
  | 'E_CUDA'
  | 'E_INTERNAL'
  | 'E_LOAD'
  | 'E_ABORTED';

/** Every error from the engine is a DalleError; switch on `code`, not on the message. */
export class DalleError extends Error {
  readonly code: DalleErrorCode;
  constructor(code: DalleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DalleError';
    this.code = code;
  }
}

/** Work stopped by an AbortSignal: `name` is 'AbortError' (as fetch's), `cause` the signal's reason. */
export class DalleAbortError extends DalleError {
  constructor(what: string, reason?: unknown) {
    super('E_ABORTED', `${what} was aborted`, { cause: reason });
    this.name = 'AbortError';
  }
}

/** Throws a DalleAbortError when `signal` has been aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new DalleAbortError(what, signal.reason);
}

/** The native binary could not be loaded; `attempts` says what was tried and why each failed. */
export class DalleLoadError extends DalleError {
  readonly attempts: ReadonlyArray<{ path: string; reason: string }>;
  constructor(message: string, attempts: ReadonlyArray<{ path: string; reason: string }>) {
    super('E_LOAD', message);
    this.name = 'DalleLoadError';
    this.attempts = attempts;
  }
}
