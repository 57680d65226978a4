/**
 * The HTML page a training run writes beside its weights: loss curves (training and held-out) and sample grids over
 * time, in one self-contained file (inline SVG charts, PNGs as data URLs), rewritten as the run goes so it can be
 * opened at any point. A small script checks on load that every chart and image rendered and says so in
 * `body[data-check]`, which the report test reads from headless Chromium. The page also carries its data as JSON, so a
 * resumed run continues the same report.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

import { encodePng } from '../data/image.js';
import type { ImageRGB } from '../data/types.js';
import type { TrainProgress } from './trainer.js';

export interface ReportHeader {
  title: string;
  /** Name → value lines shown under the title: model configuration, data, command line. */
  facts: Record<string, string | number>;
}

interface Point {
  step: number;
  values: Record<string, number>;
}

interface SampleGrid {
  step: number;
  caption: string;
  png: string;
}

/** Seconds between rewrites while training; the last write happens at finish(). */
const WRITE_EVERY_S = 10;
/** Points kept per curve, about: longer runs record every k-th progress event. */
const POINTS = 1000;

interface ReportData {
  train: Point[];
  eval: Point[];
  samples: SampleGrid[];
}

const DATA_START = '<script type="application/json" id="report-data">';

export class TrainingReport {
  readonly #train: Point[] = [];
  readonly #eval: Point[] = [];
  readonly #samples: SampleGrid[] = [];
  readonly #started = new Date();
  #lastWrite = 0;
  #lastEvalStep = -1;

  /** With `resume`, the curves and grids already in the page at `path` (from the interrupted run) are kept. */
  constructor(
    readonly path: string,
    readonly header: ReportHeader,
    options: { resume?: boolean } = {},
  ) {
    if (options.resume && existsSync(path)) {
      const html = readFileSync(path, 'utf8');
      const start = html.indexOf(DATA_START);
      const end = html.indexOf('</script>', start);
      if (start >= 0 && end > start) {
        try {
          const data = JSON.parse(html.slice(start + DATA_START.length, end)) as ReportData;
          this.#train.push(...data.train);
          this.#eval.push(...data.eval);
          this.#samples.push(...data.samples);
        } catch {
          // a damaged page: start a new one rather than fail the run
        }
      }
    }
  }

  /** Records a progress event (metrics, learning rate, held-out metrics when new) and rewrites the page now and then. */
  progress(p: TrainProgress): void {
    const every = Math.max(1, Math.floor(p.steps / POINTS));
    if (p.step % every === 0 || p.step === p.steps) {
      dropFrom(this.#train, p.step); // a run resumed from an older checkpoint redoes these updates
      this.#train.push({ step: p.step, values: { ...finite(p.metrics), lr: p.lr, 'grad norm': p.gradNorm } });
    }
    // Events repeat the latest held-out metrics until the next evaluation: one point per evaluation.
    const evalStep = p.evalStep ?? p.step;
    if (p.evalMetrics && evalStep !== this.#lastEvalStep) {
      dropFrom(this.#eval, evalStep);
      this.#eval.push({ step: evalStep, values: finite(p.evalMetrics) });
      this.#lastEvalStep = evalStep;
    }
    if (performance.now() / 1000 - this.#lastWrite >= WRITE_EVERY_S) this.write('running', p);
  }

  /** Adds a grid of samples made at `step` (reconstructions, generated images…), described by `caption`. */
  samples(step: number, grid: ImageRGB, caption: string): void {
    dropFrom(this.#samples, step + 1);
    this.#samples.push({ step, caption, png: encodePng(grid).toString('base64') });
  }

  /** Writes the page (atomically: a reader never sees half a file). */
  write(status: string, last?: TrainProgress): void {
    this.#lastWrite = performance.now() / 1000;
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, this.render(status, last));
    renameSync(tmp, this.path);
  }

  render(status: string, last?: TrainProgress): string {
    const keys = [...new Set([...this.#train, ...this.#eval].flatMap((p) => Object.keys(p.values)))];
    const facts: Record<string, string | number> = { status, started: this.#started.toISOString(), ...this.header.facts };
    if (last) Object.assign(facts, { update: `${last.step} of ${last.steps}`, elapsed: `${last.elapsedSeconds.toFixed(0)} s`, rate: `${last.stepsPerSecond.toFixed(2)} updates/s` });
    const charts = keys.map((k) => chart(k, series(this.#train, k), series(this.#eval, k))).join('\n');
    const grids = [...this.#samples]
      .reverse()
      .map((s) => `<figure><img alt="samples at update ${s.step}" src="data:image/png;base64,${s.png}"><figcaption>update ${s.step}: ${esc(s.caption)}</figcaption></figure>`)
      .join('\n');
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(this.header.title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin-bottom: 16px; } td { padding: 2px 12px 2px 0; vertical-align: top; } td:first-child { color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } svg { background: #fafafa; border: 1px solid #ddd; }
figure { display: inline-block; margin: 0 16px 16px 0; } img { image-rendering: pixelated; border: 1px solid #ddd; max-width: 100%; }
.train { stroke: #1f6feb; } .eval { stroke: #d9480f; }
</style></head>
<body data-check="pending">
<h1>${esc(this.header.title)}</h1>
<table>${Object.entries(facts).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(String(v))}</td></tr>`).join('')}</table>
<h2>Curves</h2><p><span style="color:#1f6feb">■</span> training <span style="color:#d9480f">■</span> held-out</p>
<div class="charts">${charts || '<p>no updates yet</p>'}</div>
<h2>Samples over time (newest first)</h2>
${grids || '<p>none yet</p>'}
${DATA_START}${JSON.stringify({ train: this.#train, eval: this.#eval, samples: this.#samples } satisfies ReportData).replace(/</g, '\\u003c')}</script>
<script>
addEventListener('load', () => {
  const bad = [];
  for (const img of document.images) if (!img.complete || img.naturalWidth === 0) bad.push(img.alt);
  const lines = document.querySelectorAll('svg polyline');
  for (const l of lines) if (l.getBBox().width === 0 && l.points.length > 1) bad.push('flat chart');
  document.body.dataset.check = bad.length ? 'broken: ' + bad.join(', ') : 'ok: ' + lines.length + ' curves, ' + document.images.length + ' images';
});
</script>
</body></html>
`;
  }
}

/** Removes the trailing entries at `step` or later. */
function dropFrom(list: Array<{ step: number }>, step: number): void {
  while (list.length > 0 && list[list.length - 1]!.step >= step) list.pop();
}

function finite(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
}

function series(points: readonly Point[], key: string): Array<[number, number]> {
  return points.filter((p) => key in p.values).map((p) => [p.step, p.values[key]!]);
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const W = 420;
const H = 180;
const PAD = { left: 56, right: 10, top: 22, bottom: 24 };

/** One metric: training line, held-out line with dots, the y range and the update range as labels. */
function chart(name: string, train: Array<[number, number]>, held: Array<[number, number]>): string {
  const all = [...train, ...held];
  if (all.length === 0) return '';
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(x0 + 1, ...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number): number => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y: number): number => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const line = (pts: Array<[number, number]>, cls: string): string =>
    pts.length === 0 ? '' : `<polyline class="${cls}" fill="none" stroke-width="1.5" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`;
  const dots = held.map(([x, y]) => `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="#d9480f"/>`).join('');
  const fmt = (v: number): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : v.toPrecision(4));
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(name)}">
<text x="${PAD.left}" y="15" font-weight="bold">${esc(name)}</text>
<text x="${PAD.left - 4}" y="${PAD.top + 8}" text-anchor="end" font-size="11">${fmt(y1)}</text>
<text x="${PAD.left - 4}" y="${H - PAD.bottom}" text-anchor="end" font-size="11">${fmt(y0)}</text>
<text x="${PAD.left}" y="${H - 6}" font-size="11">${x0}</text><text x="${W - PAD.right}" y="${H - 6}" text-anchor="end" font-size="11">update ${x1}</text>
<rect x="${PAD.left}" y="${PAD.top}" width="${W - PAD.left - PAD.right}" height="${H - PAD.top - PAD.bottom}" fill="none" stroke="#ddd"/>
${line(train, 'train')}${line(held, 'eval')}${dots}
</svg>`;
}
