import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadModelFiles, MODEL_FORMAT, readManifest } from '../../../lib/api/model-files.js';
import { liveBytes } from '../../../lib/engine.js';
import { expectDalleError, invariant } from './_expect.js';
import { clipFile, compactHfJson, dvaeFile, TINY_DVAE, tinyClipConfig, tinyTokenizer, tinyTransformerConfig, transformerFile } from './_samples.js';
import { tempSubfolder } from './_temp.js';

export const description = 'readManifest on the bytes as model.json, then loadModelFiles against tiny weight files beside it (names that leave the folder are not followed)';

/**
 * The weights a manifest in the corpus names, written once beside it: a matching set, and files that each break one
 * rule loadModelFiles checks (no tokenizer, a dVAE grid or a CLIP image size that does not fit).
 */
function weightsFolder(): string {
  const dir = tempSubfolder('manifest');
  if (existsSync(join(dir, 'dvae.safetensors'))) return dir;
  const tokenizer = compactHfJson(tinyTokenizer());
  const vocab = tinyTokenizer().vocabSize;
  const files: Record<string, Buffer> = {
    'dvae.safetensors': dvaeFile(),
    'transformer.safetensors': transformerFile(tinyTransformerConfig(vocab), { tokenizer }),
    'clip.safetensors': clipFile(tinyClipConfig(vocab), { tokenizer }),
    'transformer-no-tokenizer.safetensors': transformerFile(),
    'clip-no-tokenizer.safetensors': clipFile(),
    'dvae-grid-4.safetensors': dvaeFile({ ...TINY_DVAE, imageSize: 4 }),
    'clip-4px.safetensors': clipFile({ ...tinyClipConfig(vocab), imageSize: 4 }, { tokenizer }),
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** A name inside the manifest's folder: fuzzed names must not wander the host's files (and stay deterministic). */
const PLAIN_NAME = /^(?!\.\.?$)[\w.-]+$/;

export function fuzz(data: Buffer): void {
  const path = join(weightsFolder(), 'model.json');
  writeFileSync(path, data);
  const manifest = expectDalleError(() => readManifest(path));
  if (manifest === undefined) return;
  invariant(manifest.format === MODEL_FORMAT, () => `readManifest accepted format ${JSON.stringify(manifest.format)}`);
  for (const key of ['name', 'dvae', 'transformer'] as const) invariant(typeof manifest[key] === 'string' && manifest[key] !== '', () => `readManifest accepted ${key} ${JSON.stringify(manifest[key])}`);
  const names = [manifest.dvae, manifest.transformer, ...(manifest.clip === undefined ? [] : [manifest.clip])];
  if (!names.every((n) => PLAIN_NAME.test(n))) return;
  const live = liveBytes();
  expectDalleError(() => loadModelFiles(path))?.dispose();
  invariant(liveBytes() === live, () => `loadModelFiles left ${liveBytes() - live} bytes of tensors allocated`);
}
