import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { imageGrid } from '../lib/data/grid.js';
import { TrainingReport } from '../lib/train/report.js';
import type { TrainProgress } from '../lib/train/trainer.js';
import { chromiumPath, renderedCheck } from './helpers/chromium.js';

// As the trainer sends them: held out every 50 updates, the latest held-out metrics repeated in between.
function progress(step: number, loss: number): TrainProgress {
  const evalStep = step - (step % 50);
  return {
    step, steps: 100, epoch: 0, metrics: { loss, nll: loss / 2 }, lr: 1e-3 * (1 - step / 100), gradNorm: 1 / step, skippedSteps: 0,
    ...(evalStep === 0 ? {} : { evalMetrics: { loss: 6 / evalStep }, evalStep }), elapsedSeconds: step / 10, stepsPerSecond: 10, examplesPerSecond: 80, etaSeconds: (100 - step) / 10,
  };
}

function sampleReport(dir: string): TrainingReport {
  const report = new TrainingReport(join(dir, 'run.report.html'), { title: 'a <test> run', facts: { model: '{"width":64}', data: 'shapes & more' } });
  for (let step = 10; step <= 100; step += 10) report.progress(progress(step, 5 / step));
  const red = new Uint8Array(8 * 8 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0));
  const blue = new Uint8Array(8 * 8 * 3).map((_, i) => (i % 3 === 2 ? 255 : 0));
  report.samples(50, imageGrid([red, blue], 8, { scale: 4 }), 'two squares');
  report.samples(100, imageGrid([blue, red], 8, { scale: 4 }), 'the other way round');
  report.write('done');
  return report;
}

test('the report holds every curve, the held-out points, the sample grids and escaped text', (t) => {
  const report = sampleReport(mkdtempSync(join(tmpdir(), 'dalle-report-')));
  const html = readFileSync(report.path, 'utf8');
  // loss, nll, lr, grad norm; the held-out loss shares the loss chart.
  t.is(html.match(/<svg /g)?.length, 4);
  t.is(html.match(/<polyline class="train"/g)?.length, 4);
  t.is(html.match(/<polyline class="eval"/g)?.length, 1);
  t.is(html.match(/<circle /g)?.length, 2, 'one held-out point per evaluation');
  t.is(html.match(/src="data:image\/png;base64,/g)?.length, 2);
  t.true(html.indexOf('update 100: the other way round') < html.indexOf('update 50: two squares'), 'newest grid first');
  t.regex(html, /a &#60;test&#62; run/);
  t.regex(html, /shapes &#38; more/);
  t.notRegex(html, /<test>/);
});

test('the report renders in headless Chromium: every chart drawn, every image decoded', async (t) => {
  if (chromiumPath() === null) {
    if (process.env.DALLE_REQUIRE_CHROMIUM === '1') return t.fail('DALLE_REQUIRE_CHROMIUM=1 but no chromium is installed (apt-get install chromium)');
    t.log('skipped: no chromium (apt-get install chromium)');
    return t.pass();
  }
  const report = sampleReport(mkdtempSync(join(tmpdir(), 'dalle-report-')));
  t.is(await renderedCheck(report.path), 'ok: 5 curves, 2 images');
});
