/**
 * Data pipeline throughput: images/s out of the loader at 64 and 256 px (transformer preset), from JPEG and from PNG
 * sources of 300–500 px, with 1 and 2 workers; and single-thread decode speed of the pure-JS decoders (jpeg-js,
 * pngjs) against sharp on the same files, which is what image.ts's decoder choice rests on.
 *
 *   node --import tsx benchmarks/data/throughput.ts [--images N] [--reps N]
 *
 * Source images are seeded smooth gradients plus noise (so PNG compresses like a photo would, poorly, and JPEG has
 * texture to code), written once to a temp dir. Loader figures are the steady rate after the first batch, with the
 * time to the first batch (worker start-up, which under tsx includes compiling the worker's TypeScript) beside it.
 * On a machine with fewer cores than workers + 1 the 2-worker figure is capped by the cores, not the loader.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import sharp from 'sharp';

import { decodeImage } from '../../lib/data/image.js';
import { createLoader } from '../../lib/data/loader.js';
import { mulberry32 } from '../../lib/data/preprocess.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--images', 48);
const REPS = arg('--reps', 2);

function makeDataset(): { jpegDir: string; pngDir: string } {
  const root = join(tmpdir(), `dalle-data-bench-${N}`);
  const jpegDir = join(root, 'jpeg');
  const pngDir = join(root, 'png');
  mkdirSync(jpegDir, { recursive: true });
  mkdirSync(pngDir, { recursive: true });
  const rand = mulberry32(1234);
  for (let i = 0; i < N; i++) {
    const w = 300 + Math.floor(rand() * 201);
    const h = 300 + Math.floor(rand() * 201);
    const rgba = Buffer.alloc(w * h * 4);
    const [a, b, c] = [rand() * 3, rand() * 3, rand() * 3];
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      const noise = rand() * 24;
      rgba[p] = (x * a + noise) & 255;
      rgba[p + 1] = (y * b + noise) & 255;
      rgba[p + 2] = ((x + y) * c * 0.5 + noise) & 255;
      rgba[p + 3] = 255;
    }
    const name = String(i).padStart(4, '0');
    writeFileSync(join(jpegDir, `${name}.jpg`), jpeg.encode({ width: w, height: h, data: rgba }, 90).data);
    const png = new PNG({ width: w, height: h });
    rgba.copy(png.data);
    writeFileSync(join(pngDir, `${name}.png`), PNG.sync.write(png));
    for (const dir of [jpegDir, pngDir]) writeFileSync(join(dir, `${name}.txt`), `image number ${i}`);
  }
  return { jpegDir, pngDir };
}

async function timeDecode(label: string, files: Buffer[], decode: (b: Buffer) => unknown): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    for (const f of files) await decode(f);
    best = Math.min(best, performance.now() - t0);
  }
  const rate = files.length / (best / 1000);
  console.log(`  ${label.padEnd(28)} ${rate.toFixed(1).padStart(8)} images/s`);
  return rate;
}

/**
 * Best over reps of: ms to the first batch (worker start-up + first decodes), images/s after it (biased up a little:
 * batches prefetched during start-up arrive at once), and images/s over the whole run (biased down by start-up).
 */
async function timeLoader(dir: string, size: number, workers: number, decoder: 'js' | 'sharp'): Promise<[number, number, number]> {
  let firstMs = Infinity;
  let rate = 0;
  let overall = 0;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    let n = 0;
    let tFirst = 0;
    let nFirst = 0;
    const spec = { kind: 'folder' as const, path: dir, decoder };
    for await (const b of createLoader(spec, { batchSize: 8, size, preset: 'transformer', seed: r, workers })) {
      n += b.keys.length;
      if (tFirst === 0) [tFirst, nFirst] = [performance.now(), n];
    }
    if (n !== N) throw new Error(`loader yielded ${n} of ${N}`);
    firstMs = Math.min(firstMs, tFirst - t0);
    const end = performance.now();
    rate = Math.max(rate, (n - nFirst) / ((end - tFirst) / 1000));
    overall = Math.max(overall, n / ((end - t0) / 1000));
  }
  return [firstMs, rate, overall];
}

const { jpegDir, pngDir } = makeDataset();
console.log(`${N} images of 300–500 px, best of ${REPS}; ${cpus().length} CPU cores (${cpus()[0]?.model ?? '?'})`);
const read = (dir: string, ext: string): Buffer[] =>
  Array.from({ length: N }, (_, i) => readFileSync(join(dir, `${String(i).padStart(4, '0')}.${ext}`)));
const jpegs = read(jpegDir, 'jpg');
const pngs = read(pngDir, 'png');
console.log('decode, one thread:');
await timeDecode('jpeg-js (decodeImage)', jpegs, (b) => decodeImage(b, 'x'));
await timeDecode('sharp JPEG', jpegs, (b) => sharp(b).removeAlpha().raw().toBuffer());
await timeDecode('pngjs (decodeImage)', pngs, (b) => decodeImage(b, 'x'));
await timeDecode('sharp PNG', pngs, (b) => sharp(b).removeAlpha().raw().toBuffer());
sharp.concurrency(1);
await timeDecode('sharp JPEG, 1 libvips thread', jpegs, (b) => sharp(b).removeAlpha().raw().toBuffer());
await timeDecode('sharp PNG, 1 libvips thread', pngs, (b) => sharp(b).removeAlpha().raw().toBuffer());
console.log('loader (transformer preset, batch 8): images/s after the first batch / over the whole run [ms to the first batch]');
for (const decoder of ['js', 'sharp'] as const) {
  for (const [label, dir] of [['JPEG', jpegDir], ['PNG', pngDir]] as const) {
    for (const size of [64, 256]) {
      for (const workers of [1, 2]) {
        const [first, rate, overall] = await timeLoader(dir, size, workers, decoder);
        const what = `${decoder.padEnd(5)} ${label.padEnd(4)} → ${String(size).padStart(3)} px, ${workers} worker(s)`;
        console.log(`  ${what} ${rate.toFixed(1).padStart(7)} / ${overall.toFixed(1).padStart(6)} images/s  [${first.toFixed(0)} ms]`);
      }
    }
  }
}
