import { liveBytes } from '../../../lib/engine.js';
import { moduleParameters, readTorchFile, toFloat32, type TorchTensor } from '../../../lib/formats/torch.js';
import { loadOpenAIDvae } from '../../../lib/models/dvae/io.js';
import { expectDalleError, invariant } from './_expect.js';
import { writeTemp } from './_temp.js';

export const description = 'readTorchFile (torch.save zip, legacy and bare pickles) with and without CRC checks, moduleParameters, toFloat32, and loadOpenAIDvae on the file';

/** Elements widened by toFloat32 per input: expanded (stride-0) views may legitimately reach 2^24 each. */
const MAX_CONVERTED_ELEMENTS = 1 << 22;
/** torch.ts's bound on expanding a view larger than its storage: past it, toFloat32 must refuse at once. */
const MAX_EXPANDED_ELEMENTS = 1 << 24;
const FLOATING = new Set(['f32', 'f64', 'f16', 'bf16']);

function checkTensor(name: string, t: TorchTensor): number {
  invariant(t.shape.length === t.strides.length, () => `${name}: shape [${t.shape}] and strides [${t.strides}] differ in rank`);
  invariant(Number.isSafeInteger(t.storageOffset) && t.storageOffset >= 0, () => `${name}: storage offset ${t.storageOffset}`);
  let last = t.storageOffset;
  for (let d = 0; d < t.shape.length; d++) last += (t.shape[d]! - 1) * t.strides[d]!;
  const count = t.shape.reduce((a, b) => a * b, 1);
  invariant(count === 0 || last < t.data.length, () => `${name}: the view reaches element ${last} of a ${t.data.length}-element storage`);
  return count;
}

export function fuzz(data: Buffer): void {
  expectDalleError(() => readTorchFile(data));
  // Mutations nearly always break a CRC first; without the check the archive's contents get fuzzed too.
  const root = expectDalleError(() => readTorchFile(data, { verifyCrc: false }));
  if (root !== undefined) {
    const params = expectDalleError(() => moduleParameters(root));
    let budget = MAX_CONVERTED_ELEMENTS;
    for (const [name, tensor] of params ?? []) {
      const count = checkTensor(name, tensor);
      if (!FLOATING.has(tensor.dtype)) continue;
      if (count > tensor.data.length && count > MAX_EXPANDED_ELEMENTS) {
        // A few bytes of file describing gigabytes: converting must be refused before anything is allocated.
        invariant(expectDalleError(() => toFloat32(tensor)) === undefined, () => `${name}: toFloat32 expanded a [${tensor.shape}] view of a ${tensor.data.length}-element storage`);
        continue;
      }
      if (count > budget) continue;
      budget -= count;
      const values = expectDalleError(() => toFloat32(tensor));
      invariant(values === undefined || values.length === count, () => `${name}: toFloat32 gave ${values?.length} values for ${count} elements`);
    }
  }
  const path = writeTemp('input.pt', data);
  const live = liveBytes();
  expectDalleError(() => loadOpenAIDvae(path, path))?.dispose();
  invariant(liveBytes() === live, () => `loadOpenAIDvae left ${liveBytes() - live} bytes of tensors allocated`);
}
