/**
 * Several sources as one: `{ kind: 'mix', sources: [specA, specB], weights: [3, 1] }` yields examples from each in
 * proportion to its weight (a smooth weighted round robin, so the order is fixed and the mix is even at every
 * scale), until every source has ended. Keys are prefixed with the source's position (`0:`, `1:`) to stay unique.
 * A shard spec is passed to every source, which shards its own records, so the shards of a mix partition it.
 */
import { DalleError } from '../../errors.js';
import { type ExampleSource, inShard, mergeSkipReports, openSourceSpec, type ShardSpec, type SourceSpec } from '../source.js';
import type { Example } from '../types.js';

export interface MixSpec {
  kind: 'mix';
  sources: SourceSpec[];
  /** Relative share of each source; default all 1. */
  weights?: number[];
  shard?: ShardSpec;
}

function validate(spec: MixSpec): { sources: SourceSpec[]; weights: number[] } {
  const bad = (what: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `mix source: ${what}`);
  };
  if (spec === null || typeof spec !== 'object' || spec.kind !== 'mix') bad("spec.kind must be 'mix'");
  if (!Array.isArray(spec.sources) || spec.sources.length === 0) bad('sources must be a non-empty array of source specs');
  if (spec.sources.some((s) => s === null || typeof s !== 'object' || (s as { kind?: unknown }).kind === 'mix')) bad('each source must be a spec of another kind (mixes do not nest)');
  const weights = spec.weights ?? spec.sources.map(() => 1);
  if (!Array.isArray(weights) || weights.length !== spec.sources.length || !weights.every((w) => Number.isFinite(w) && w > 0)) {
    bad(`weights must be ${spec.sources.length} positive numbers, one per source`);
  }
  return { sources: spec.sources, weights };
}

export function openSource(spec: MixSpec): ExampleSource {
  const { sources, weights } = validate(spec);
  const opened: ExampleSource[] = [];
  return {
    sharded: true,
    get skipped() {
      return mergeSkipReports(opened.map((s) => s.skipped));
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<Example> {
      opened.length = 0;
      for (const s of sources) opened.push(await openSourceSpec(spec.shard ? { ...s, shard: spec.shard } : s));
      const iterators = opened.map((s, i) => filtered(s, spec.shard, i));
      const credit = weights.map(() => 0);
      const live = new Set(iterators.keys());
      const total = weights.reduce((a, b) => a + b, 0);
      while (live.size > 0) {
        let pick = -1;
        for (const i of live) {
          credit[i]! += weights[i]!;
          if (pick < 0 || credit[i]! > credit[pick]!) pick = i;
        }
        credit[pick]! -= total;
        const next = await iterators[pick]!.next();
        if (next.done) {
          live.delete(pick);
          continue;
        }
        yield next.value;
      }
    },
  };
}

/** A source's examples with their keys prefixed; a source that ignored the shard is filtered here. */
async function* filtered(source: ExampleSource, shard: ShardSpec | undefined, position: number): AsyncGenerator<Example> {
  let index = 0;
  for await (const e of source) {
    if (source.sharded || inShard(shard, index++)) yield { ...e, key: `${position}:${e.key}` };
  }
}
