import { liveBytes } from '../../../lib/engine.js';
import { DTYPES, parse, readSafetensors, serialize, type SafetensorsFile, toFloat32 } from '../../../lib/formats/safetensors.js';
import { loadClip } from '../../../lib/models/clip/io.js';
import { loadDvae } from '../../../lib/models/dvae/io.js';
import { loadTransformer } from '../../../lib/models/transformer/io.js';
import { expectDalleError, invariant } from './_expect.js';
import { writeTemp } from './_temp.js';

export const description = 'safetensors parse and readSafetensors (same verdict), tensors vs dtype x shape, a serialize round trip, and the dVAE, transformer and CLIP loaders on the same file';

/** Elements widened by toFloat32 per input, so that a legitimately large file stays a fast input. */
const MAX_CONVERTED_ELEMENTS = 1 << 22;
const FLOATING = new Set(['F32', 'F16', 'BF16', 'F64']);

const LOADERS: Array<[string, (path: string) => Disposable]> = [
  ['loadDvae', (path) => loadDvae(path)],
  ['loadTransformer', (path) => loadTransformer(path).model],
  ['loadClip', (path) => loadClip(path).model],
];

function checkTensors(file: SafetensorsFile, inputBytes: number): void {
  let budget = MAX_CONVERTED_ELEMENTS;
  let bytes = 0;
  for (const [name, t] of file.tensors) {
    const ctor = DTYPES[t.dtype];
    invariant(t.data instanceof ctor, () => `${name}: a ${t.dtype} tensor held in a ${t.data.constructor.name}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    invariant(t.data.length === count, () => `${name}: shape [${t.shape}] is ${count} elements but the data has ${t.data.length}`);
    bytes += t.data.byteLength;
    if (FLOATING.has(t.dtype) && count <= budget) {
      budget -= count;
      invariant(toFloat32(t).length === count, () => `${name}: toFloat32 changed the element count`);
    }
  }
  invariant(bytes <= inputBytes, () => `the tensors hold ${bytes} bytes, more than the ${inputBytes}-byte file`);
  for (const [key, value] of Object.entries(file.metadata)) invariant(typeof value === 'string', () => `metadata ${key} is a ${typeof value}`);
}

function sameFile(a: SafetensorsFile, b: SafetensorsFile): string | null {
  if (a.tensors.size !== b.tensors.size) return `${a.tensors.size} vs ${b.tensors.size} tensors`;
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name);
    if (u === undefined) return `${name} missing`;
    if (u.dtype !== t.dtype || u.shape.join() !== t.shape.join()) return `${name}: ${t.dtype} [${t.shape}] vs ${u.dtype} [${u.shape}]`;
    if (Buffer.compare(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)) !== 0) return `${name}: bytes differ`;
  }
  const metadata = (m: Record<string, string>): string => JSON.stringify(Object.entries(m).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return metadata(a.metadata) === metadata(b.metadata) ? null : 'metadata differs';
}

export function fuzz(data: Buffer): void {
  const parsed = expectDalleError(() => parse(data));
  if (parsed !== undefined) {
    checkTensors(parsed, data.length);
    // What the reader accepts, the writer must write, and reading that back must give the same file.
    const difference = sameFile(parsed, parse(serialize(parsed.tensors, parsed.metadata)));
    invariant(difference === null, () => `serialize(parse(file)) does not read back the same: ${difference}`);
  }
  const path = writeTemp('input.safetensors', data);
  const fromDisk = expectDalleError(() => readSafetensors(path));
  invariant((parsed === undefined) === (fromDisk === undefined), () => `parse ${parsed ? 'accepts' : 'refuses'} the bytes but readSafetensors ${fromDisk ? 'accepts' : 'refuses'} the file`);
  if (parsed !== undefined && fromDisk !== undefined) {
    const difference = sameFile(parsed, fromDisk);
    invariant(difference === null, () => `parse and readSafetensors read different files: ${difference}`);
  }
  const live = liveBytes();
  for (const [loader, load] of LOADERS) {
    expectDalleError(() => load(path))?.[Symbol.dispose]();
    invariant(liveBytes() === live, () => `${loader} left ${liveBytes() - live} bytes of tensors allocated`);
  }
}
