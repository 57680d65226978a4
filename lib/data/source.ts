/**
 * The interface every source implements, the skip-report builder they share, and opening a source by its spec's
 * `kind` (the loader's worker threads receive only the JSON spec and open the source themselves).
 */
import { statSync } from 'node:fs';

import { DalleError } from '../errors.js';
import { type Decoder, decodeImageWith, sniffFormat } from './image.js';
import type { Example, SkipReport } from './types.js';

/** A stream of examples plus the inputs it had to skip so far (final once iteration ends). */
export interface ExampleSource extends AsyncIterable<Example> {
  readonly skipped: SkipReport;
  /**
   * True when the source honoured `spec.shard` and yields only its shard; a loader worker filters a source that
   * did not do so itself. Sharding inside the source saves decoding the images of other shards.
   */
  readonly sharded?: boolean;
}

/**
 * Optional on every spec: keep only raw records whose index i has floor(i / block) % count === index. Records are
 * counted before skipping, so every shard sees the same numbering and each skip is counted by exactly one shard.
 */
export interface ShardSpec {
  index: number;
  count: number;
  block: number;
}

export type SourceKind = 'shapes' | 'emoji' | 'folder' | 'jsonl' | 'webdataset' | 'mix';
const KINDS: readonly SourceKind[] = ['shapes', 'emoji', 'folder', 'jsonl', 'webdataset', 'mix'];

/** Any source's spec: plain JSON, so it can be posted to a worker. */
export interface SourceSpec {
  kind: SourceKind;
  shard?: ShardSpec;
  [option: string]: unknown;
}

export function inShard(shard: ShardSpec | undefined, index: number): boolean {
  return shard === undefined || Math.floor(index / shard.block) % shard.count === shard.index;
}

/** How many skipped keys a report keeps: enough to look at, bounded for a million bad files. */
const MAX_SAMPLES = 20;

export class SkipCounter {
  readonly report: SkipReport = { skipped: 0, reasons: {}, samples: [] };
  add(key: string, reason: string): void {
    this.report.skipped++;
    this.report.reasons[reason] = (this.report.reasons[reason] ?? 0) + 1;
    if (this.report.samples.length < MAX_SAMPLES) this.report.samples.push({ key, reason });
  }
}

/**
 * The check every file-based source makes when opened: a missing path is E_NOT_FOUND, a path of the wrong kind
 * E_INVALID_ARGUMENT, both naming the source, so a typo fails at once and not as an empty epoch.
 */
export function requirePath(source: string, path: unknown, kind: 'file' | 'directory', role = 'path'): string {
  if (typeof path !== 'string' || path === '') throw new DalleError('E_INVALID_ARGUMENT', `${source} source needs a ${role}`);
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new DalleError('E_NOT_FOUND', `${source} source: ${role} ${path} does not exist`);
  }
  if (kind === 'file' ? !stat.isFile() : !stat.isDirectory()) {
    throw new DalleError('E_INVALID_ARGUMENT', `${source} source: ${path} is not a ${kind}`);
  }
  return path;
}

/** A source that shards itself, over a generator that counts its skips in `skips`. */
export function shardedSource(skips: SkipCounter, iterate: () => AsyncIterator<Example>): ExampleSource {
  return {
    sharded: true,
    get skipped() {
      return skips.report;
    },
    [Symbol.asyncIterator]: iterate,
  };
}

/** Sums reports from several shards or workers. */
export function mergeSkipReports(reports: readonly SkipReport[]): SkipReport {
  const out: SkipReport = { skipped: 0, reasons: {}, samples: [] };
  for (const r of reports) {
    out.skipped += r.skipped;
    for (const [reason, n] of Object.entries(r.reasons)) out.reasons[reason] = (out.reasons[reason] ?? 0) + n;
    for (const s of r.samples) if (out.samples.length < MAX_SAMPLES) out.samples.push(s);
  }
  return out;
}

/** Opens lib/data/<kind>/index(.js|.ts) and calls its openSource(spec). */
export async function openSourceSpec(spec: SourceSpec): Promise<ExampleSource> {
  if (spec === null || typeof spec !== 'object' || !KINDS.includes(spec.kind)) {
    throw new DalleError('E_INVALID_ARGUMENT', `unknown source kind ${JSON.stringify((spec as { kind?: unknown })?.kind)}; expected one of ${KINDS.join(', ')}`);
  }
  const mod = (await import(`./${spec.kind}/index.js`)) as { openSource?: (s: SourceSpec) => ExampleSource };
  if (typeof mod.openSource !== 'function') {
    throw new DalleError('E_INVALID_ARGUMENT', `lib/data/${spec.kind} does not export openSource`);
  }
  return mod.openSource(spec);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The common tail of the file-based sources: decode `bytes` and pair with `caption` (a caption file's bytes must be
 * UTF-8; one that is not is skipped, not read with U+FFFD in it), or count why not. Returns null when skipped.
 */
export async function exampleFromBytes(
  key: string,
  bytes: Uint8Array,
  caption: string | Uint8Array | undefined,
  skips: SkipCounter,
  decoder: Decoder = 'js',
): Promise<Example | null> {
  if (caption === undefined) return skips.add(key, 'missing caption'), null;
  let decoded: string;
  try {
    decoded = typeof caption === 'string' ? caption : strictUtf8.decode(caption);
  } catch {
    return skips.add(key, 'caption not UTF-8'), null;
  }
  const text = decoded.trim();
  if (text === '') return skips.add(key, 'empty caption'), null;
  if (sniffFormat(bytes) === null) return skips.add(key, 'not an image'), null;
  try {
    return { key, image: await decodeImageWith(bytes, key, decoder), caption: text };
  } catch (err) {
    // A missing sharp is the user's setup, not a bad file: it must surface, not be counted as thousands of skips.
    if (err instanceof DalleError && err.code !== 'E_INVALID_ARGUMENT') throw err;
    skips.add(key, 'corrupt image');
    return null;
  }
}
