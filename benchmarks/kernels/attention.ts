/**
 * CPU attention benchmark: sparse row/column/conv/causal kernels against the dense masked
 * reference. For each shape it validates sparse == dense on that very shape first, then times
 * forward and backward (median of several runs after a warm-up) and prints a table; everything
 * goes to benchmarks/results/attention.json.
 *
 *   node --import tsx benchmarks/kernels/attention.ts [--reps N] [--small]
 *   DALLE_BINARY=build-x/Release/dalle.node node --import tsx benchmarks/kernels/attention.ts
 *
 * Shapes: a small DALL·E (65 text slots, 16×16 grid, 4 heads of 64) and the paper's full
 * sequence (256 text slots, 32×32 grid) with 2 heads; --small runs the first only. Column timings
 * are in the transposed (column-major) layout the kernel consumes; the two permutations a column
 * layer adds around it are not included.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Tensor, buildInfo, ops } from '../../lib/index.js';
import type { AttentionMaskKind } from '../../lib/ops/attention.js';

interface Shape {
  name: string;
  B: number;
  Hh: number;
  D: number;
  textLen: number;
  grid: number;
  nImg: number;
}

const SHAPES: Shape[] = [
  { name: 'small', B: 1, Hh: 4, D: 64, textLen: 65, grid: 16, nImg: 255 },
  { name: 'paper-seq', B: 1, Hh: 2, D: 64, textLen: 256, grid: 32, nImg: 1023 },
];
const KINDS: AttentionMaskKind[] = ['row', 'column', 'conv', 'causal'];
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 5;
const shapes = process.argv.includes('--small') ? SHAPES.slice(0, 1) : SHAPES;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}

function random(shape: number[], seed: number): Tensor {
  const rand = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(Float32Array.from({ length: n }, rand), shape);
}

function maxDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** Median wall time in ms of REPS calls after one warm-up; fn returns the tensors to free. */
function time(fn: () => Tensor[]): number {
  for (const t of fn()) t.dispose();
  const ms: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = process.hrtime.bigint();
    const outs = fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    for (const t of outs) t.dispose();
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

interface Row {
  mask: AttentionMaskKind;
  /** Fraction of the S×S score matrix the mask allows. */
  density: number;
  fwdMs: number;
  bwdMs: number;
  denseFwdBwdMs: number;
  speedup: number;
  maxAbsErr: number;
}

function bench(sh: Shape): Row[] {
  const S = sh.textLen + sh.nImg;
  const shape = [sh.B, sh.Hh, S, sh.D];
  const [q, k, v, dout] = [1, 2, 3, 4].map((seed) => random(shape, seed)) as [Tensor, Tensor, Tensor, Tensor];
  const rows: Row[] = [];
  for (const kind of KINDS) {
    const opts = { mask: kind, textLen: sh.textLen, grid: sh.grid };
    const mask = ops.attentionMask(S, opts);
    const density = mask.toInt32Array().reduce((a, b) => a + b, 0) / (S * S);

    const sp = ops.attention(q, k, v, opts);
    const de = ops.attentionDense(q, k, v, mask);
    const gs = ops.attentionBackward(q, k, v, sp.out, sp.lse, dout, opts);
    const gd = ops.attentionDenseBackward(q, k, v, mask, de.out, de.lse, dout);
    const err = Math.max(maxDiff(sp.out, de.out), maxDiff(sp.lse, de.lse), maxDiff(gs.dq, gd.dq), maxDiff(gs.dk, gd.dk), maxDiff(gs.dv, gd.dv));
    if (!(err < 1e-4)) {
      console.error(`${sh.name} ${kind}: sparse and dense disagree (max abs diff ${err}); not timing`);
      process.exit(1);
    }

    const fwdMs = time(() => {
      const r = ops.attention(q, k, v, opts);
      return [r.out, r.lse];
    });
    const bwdMs = time(() => {
      const g = ops.attentionBackward(q, k, v, sp.out, sp.lse, dout, opts);
      return [g.dq, g.dk, g.dv];
    });
    const denseFwdBwdMs = time(() => {
      const r = ops.attentionDense(q, k, v, mask);
      const g = ops.attentionDenseBackward(q, k, v, mask, r.out, r.lse, dout);
      return [r.out, r.lse, g.dq, g.dk, g.dv];
    });
    rows.push({ mask: kind, density, fwdMs, bwdMs, denseFwdBwdMs, speedup: denseFwdBwdMs / (fwdMs + bwdMs), maxAbsErr: err });
    for (const t of [mask, sp.out, sp.lse, de.out, de.lse, gs.dq, gs.dk, gs.dv, gd.dq, gd.dk, gd.dv]) t.dispose();
  }
  for (const t of [q, k, v, dout]) t.dispose();
  return rows;
}

const info = buildInfo();
const results = [];
for (const sh of shapes) {
  const S = sh.textLen + sh.nImg;
  const rows = bench(sh);
  console.log(
    `\n${sh.name}: B=${sh.B} Hh=${sh.Hh} D=${sh.D} text_len=${sh.textLen} grid=${sh.grid} n_img=${sh.nImg} (S=${S}); ` +
      `CPU, ${info.threads} threads, SIMD ${info.activeSimd}, median of ${REPS}`,
  );
  console.log('mask     density   fwd ms   bwd ms  dense fwd+bwd ms  speedup  max |sparse-dense|');
  for (const r of rows)
    console.log(
      `${r.mask.padEnd(8)} ${r.density.toFixed(3).padStart(7)}  ${r.fwdMs.toFixed(2).padStart(7)}  ${r.bwdMs.toFixed(2).padStart(7)}  ` +
        `${r.denseFwdBwdMs.toFixed(2).padStart(16)}  ${r.speedup.toFixed(2).padStart(6)}x  ${r.maxAbsErr.toExponential(1)}`,
    );
  results.push({ shape: { ...sh, S }, rows });
}

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'attention.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify({ date: new Date().toISOString(), device: 'cpu', threads: info.threads, simd: info.activeSimd, reps: REPS, results }, null, 2) + '\n',
);
console.log(`\nwrote ${out}`);
