import { type PickleGlobal, type PickleTuple, unpickle } from '../../../lib/formats/pickle.js';
import { expectDalleError } from './_expect.js';

export const description = 'unpickle directly, with an allowlist that lets every global through as an inert record, so REDUCE, NEWOBJ, BUILD and persistent ids all run';

/**
 * Stands for any global the file names; calling it records the call and runs nothing. The dict types come back as
 * Maps, as torch's allowlist makes them, so that torch pickles get past their first SETITEM.
 */
class InertGlobal implements PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  construct(args: PickleTuple, how: 'reduce' | 'newobj'): unknown {
    if (this.name === 'OrderedDict' || this.name === 'dict') return new Map();
    return { global: `${this.module}.${this.name}`, how, args };
  }
}

export function fuzz(data: Buffer): void {
  expectDalleError(() =>
    unpickle(data, {
      findGlobal: (module, name) => (module === 'refused' ? undefined : new InertGlobal(module, name)),
      persistentLoad: (pid) => ({ persistent: pid }),
      build: (obj, state) => ({ built: obj, state }),
    }),
  );
  // The same bytes with nothing allowed: every global and persistent id must be refused, not crash.
  expectDalleError(() => unpickle(data, { findGlobal: () => undefined }));
}
