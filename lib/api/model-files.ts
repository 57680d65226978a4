/**
 * A model on disk is three weight files — dVAE, transformer (with its tokenizer), CLIP (with its tokenizer) — named by
 * a small JSON manifest, so a model can be moved, shipped or swapped as one thing:
 *
 *   { "format": "dalle-engine/model@1", "name": "shapes32", "dvae": "shapes32-dvae.safetensors",
 *     "transformer": "shapes32-tiny-transformer.safetensors", "clip": "shapes32-clip.safetensors" }
 *
 * Paths are relative to the manifest. `clip` is optional: without it samples come back unranked.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { DalleError } from '../errors.js';
import { readTextFile } from '../formats/files.js';
import { packageRoot } from '../native/loader.js';
import type { BpeTokenizer } from '../tokenizer/bpe.js';
import { loadClip } from '../models/clip/io.js';
import type { Clip } from '../models/clip/model.js';
import { loadDvae } from '../models/dvae/io.js';
import type { Dvae } from '../models/dvae/model.js';
import { loadTransformer } from '../models/transformer/io.js';
import type { DalleTransformer } from '../models/transformer/model.js';

export const MODEL_FORMAT = 'dalle-engine/model@1';

export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  name: string;
  description?: string;
  dvae: string;
  transformer: string;
  clip?: string;
}

/** The weights of one model, loaded; `dispose()` frees them. */
export interface ModelFiles extends Disposable {
  manifest: ModelManifest;
  /** The manifest's absolute path. */
  path: string;
  dvae: Dvae;
  transformer: DalleTransformer;
  tokenizer: BpeTokenizer;
  clip: { model: Clip; tokenizer: BpeTokenizer } | null;
  dispose(): void;
}

/** The model shipped in the package: weights/default.model.json. */
export function defaultModelPath(): string {
  return join(packageRoot(), 'weights', 'default.model.json');
}

export function readManifest(path: string): ModelManifest {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new DalleError('E_NOT_FOUND', `model manifest ${abs} does not exist`);
  const text = readTextFile(abs);
  let m: Partial<ModelManifest>;
  try {
    m = JSON.parse(text) as Partial<ModelManifest>;
  } catch (err) {
    throw new DalleError('E_INVALID_ARGUMENT', `${abs}: not valid JSON (${(err as Error).message})`);
  }
  if (m === null || typeof m !== 'object' || m.format !== MODEL_FORMAT) {
    throw new DalleError('E_INVALID_ARGUMENT', `${abs}: not a model manifest (expected "format": "${MODEL_FORMAT}")`);
  }
  for (const key of ['name', 'dvae', 'transformer'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') throw new DalleError('E_INVALID_ARGUMENT', `${abs}: "${key}" must be a non-empty string`);
  }
  if (m.clip !== undefined && (typeof m.clip !== 'string' || m.clip === '')) throw new DalleError('E_INVALID_ARGUMENT', `${abs}: "clip" must be a non-empty string when given`);
  return m as ModelManifest;
}

/** Loads every file a manifest names, checking that they fit together; nothing stays allocated when it throws. */
export function loadModelFiles(path: string = defaultModelPath()): ModelFiles {
  const abs = resolve(path);
  const manifest = readManifest(abs);
  const file = (name: string): string => {
    const p = resolve(dirname(abs), name);
    if (!existsSync(p)) throw new DalleError('E_NOT_FOUND', `${abs} names ${name}, but ${p} does not exist`);
    return p;
  };
  const owned: Disposable[] = [];
  try {
    const dvae = loadDvae(file(manifest.dvae));
    owned.push(dvae);
    const { model: transformer, tokenizer } = loadTransformer(file(manifest.transformer));
    owned.push(transformer);
    if (tokenizer === null) throw new DalleError('E_INVALID_ARGUMENT', `${manifest.transformer}: the transformer file carries no tokenizer`);
    if (dvae.grid !== transformer.config.grid || dvae.config.vocabSize !== transformer.config.imageVocab) {
      throw new DalleError('E_INVALID_ARGUMENT', `${abs}: the dVAE (${dvae.grid}×${dvae.grid} codes from ${dvae.config.vocabSize}) does not fit the transformer (${transformer.config.grid}×${transformer.config.grid} from ${transformer.config.imageVocab})`);
    }
    let clip: ModelFiles['clip'] = null;
    if (manifest.clip !== undefined) {
      const loaded = loadClip(file(manifest.clip));
      owned.push(loaded.model);
      if (loaded.tokenizer === null) throw new DalleError('E_INVALID_ARGUMENT', `${manifest.clip}: the CLIP file carries no tokenizer`);
      if (loaded.model.config.imageSize !== dvae.config.imageSize) {
        throw new DalleError('E_INVALID_ARGUMENT', `${abs}: CLIP sees ${loaded.model.config.imageSize}px images but the dVAE makes ${dvae.config.imageSize}px`);
      }
      clip = { model: loaded.model, tokenizer: loaded.tokenizer };
    }
    const dispose = (): void => {
      for (const o of owned.splice(0)) o[Symbol.dispose]();
    };
    return { manifest, path: abs, dvae, transformer, tokenizer, clip, dispose, [Symbol.dispose]: dispose };
  } catch (err) {
    for (const o of owned) o[Symbol.dispose]();
    throw err;
  }
}
