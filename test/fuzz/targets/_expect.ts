/**
 * What every fuzz target shares: the one outcome a reader may fail with (a DalleError) is swallowed here, and
 * everything else propagates, so the runner (Jazzer.js, or scripts/fuzz/replay.ts) reports it as a finding.
 */
import { DalleError } from '../../../lib/errors.js';

/** fn's result, or undefined when it threw a DalleError; any other exception propagates. */
export function expectDalleError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DalleError) return undefined;
    throw err;
  }
}

export async function expectDalleErrorAsync<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DalleError) return undefined;
    throw err;
  }
}

/** A broken invariant: a plain Error on purpose, so that no target can swallow it as a refusal. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function invariant(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new InvariantError(message());
}
