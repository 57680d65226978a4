/**
 * Scores a folder of reconstructions with the shapes detector: for each `NAME.png` in RECONSTRUCTIONS, the caption
 * is ORIGINALS/NAME.txt (a folder written by `dalle data shapes`). Prints caption agreement per capability and overall, and how many reconstructions show the original's objects in the
 * same colours. Used
 * on the PyTorch twin's output (reference.py with SAVE_REC=dir) to compare recipes with the engine's own evaluation.
 *
 *     node --import tsx benchmarks/dvae/agreement.ts ORIGINALS RECONSTRUCTIONS
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../../lib/data/image.js';
import { parseCaption } from '../../lib/data/shapes/captions.js';
import { checkCaption, detect } from '../../lib/data/shapes/detect.js';

const [originals, reconstructions] = process.argv.slice(2);
if (!originals || !reconstructions) {
  console.error('usage: agreement.ts ORIGINALS RECONSTRUCTIONS');
  process.exit(2);
}
const perCapability: Record<string, { agree: number; total: number }> = {};
let agree = 0;
let colorsAgree = 0;
let total = 0;
for (const name of readdirSync(reconstructions).filter((n) => n.endsWith('.png')).sort()) {
  const caption = readFileSync(join(originals, name.replace(/\.png$/, '.txt')), 'utf8').trim();
  const query = parseCaption(caption);
  const rec = decodeImage(readFileSync(join(reconstructions, name)), name);
  const ok = checkCaption(rec, query);
  const colours = (img: typeof rec): string => detect(img).objects.map((o) => o.color).sort().join(',');
  if (colours(rec) === colours(decodeImage(readFileSync(join(originals, name)), name))) colorsAgree++;
  const entry = (perCapability[query.capability] ??= { agree: 0, total: 0 });
  entry.total++;
  total++;
  if (ok) {
    entry.agree++;
    agree++;
  }
}
for (const [cap, v] of Object.entries(perCapability)) console.log(`${cap}: ${v.agree}/${v.total} (${((100 * v.agree) / v.total).toFixed(1)}%)`);
console.log(`all: ${agree}/${total} (${((100 * agree) / Math.max(total, 1)).toFixed(1)}%); same objects in the same colours: ${colorsAgree}/${total}`);
