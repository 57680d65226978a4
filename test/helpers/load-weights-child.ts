/**
 * Run by test/weights-hostile.test.ts in a child process: loads each file of argv[2] (JSON: [{ kind, path }]) and
 * prints one JSON line per file (by index), before and after, so a hang or a crash names the file that caused it.
 */
import { liveBytes } from '../../lib/engine.js';
import { loadClip } from '../../lib/models/clip/io.js';
import { loadDvae } from '../../lib/models/dvae/io.js';
import { loadTransformer } from '../../lib/models/transformer/io.js';

const cases = JSON.parse(process.argv[2]!) as Array<{ kind: 'dvae' | 'transformer' | 'clip'; path: string }>;
for (const [i, c] of cases.entries()) {
  console.log(JSON.stringify({ start: i }));
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let result: Record<string, unknown>;
  try {
    const loaded = c.kind === 'dvae' ? loadDvae(c.path) : c.kind === 'clip' ? loadClip(c.path).model : loadTransformer(c.path).model;
    loaded.dispose();
    result = { loaded: true };
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    result = { name: e.name, code: e.code, message: e.message };
  }
  const rssGrowthMB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(JSON.stringify({ i, ms: performance.now() - t0, rssGrowthMB, liveBytes: liveBytes(), ...result }));
}
