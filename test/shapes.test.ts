import test from 'ava';

import { DalleError } from '../lib/errors.js';
import {
  CAPABILITIES,
  COLORS,
  COLOR_NAMES,
  GLYPHS,
  HELD_OUT,
  LETTERS,
  RELATION_PHRASES,
  SHAPE_NAMES,
  SIZE_NAMES,
  describeScene,
  detect,
  drawScene,
  evaluationPrompts,
  formatQuery,
  generateScene,
  isHeldOut,
  mulberry32,
  objectSide,
  openSource,
  parseCaption,
  placeSign,
  queryHasHeldOut,
  renderScene,
  satisfies,
  scoreSamples,
  shapesExamples,
  type Capability,
  type ObjectSpec,
  type Query,
  type Relation,
  type Scene,
} from '../lib/data/shapes/index.js';
import { minComponentPixels } from '../lib/data/shapes/detect.js';
import { MARGIN, boxesApart } from '../lib/data/shapes/scene.js';
import { openSourceSpec } from '../lib/data/source.js';
import type { ImageRGB } from '../lib/data/types.js';

const SIDES = [32, 64, 128] as const;
const PER_CAPABILITY = 200;

/** PER_CAPABILITY seeded scenes of each capability at side S, with their rendered images and one caption each. */
function scenes(side: number, capability: Capability, n = PER_CAPABILITY): Array<{ seed: number; scene: Scene; image: ImageRGB; query: Query; caption: string }> {
  const out = [];
  for (let k = 0; k < n; k++) {
    const seed = side * 100_003 + CAPABILITIES.indexOf(capability) * 10_007 + k;
    const rand = mulberry32(seed);
    const scene = generateScene(side, capability, rand);
    const query = describeScene(scene, rand);
    out.push({ seed, scene, image: renderScene(scene), query, caption: formatQuery(query, (o) => o[k % o.length]!) });
  }
  return out;
}

for (const side of SIDES) {
  test(`S=${side}: the renderer's own images satisfy their captions, 100% per capability`, (t) => {
    for (const capability of CAPABILITIES) {
      const failures = scenes(side, capability).filter((s) => !satisfies(detect(s.image), parseCaption(s.caption)));
      t.deepEqual(failures.map((f) => `seed ${f.seed}: ${f.caption}`), [], capability);
    }
  });

  test(`S=${side}: the detector rejects wrong colours, shapes, sizes, counts, relations and words`, (t) => {
    const other = <T>(items: readonly T[], x: T): T[] => items.filter((y) => y !== x);
    const opposite: Record<Relation, Relation> = { left: 'right', right: 'left', above: 'below', below: 'above' };
    let checked = 0;
    for (const capability of CAPABILITIES) {
      for (const { seed, scene, image, query } of scenes(side, capability, 60)) {
        const det = detect(image);
        const wrong: Query[] = [];
        const objectMutants = (o: ObjectSpec, truth: { size: 'small' | 'large' }): ObjectSpec[] => [
          ...other(COLOR_NAMES, o.color).map((color) => ({ ...o, color })),
          ...other(SHAPE_NAMES, o.shape).map((shape) => ({ ...o, shape })),
          { ...o, size: truth.size === 'small' ? 'large' : 'small' },
        ];
        switch (query.capability) {
          case 'single': {
            if (scene.capability !== 'single') throw new Error('scene/query mismatch');
            for (const object of objectMutants(query.object, scene.objects[0])) wrong.push({ capability: 'single', object });
            for (const count of [2, 3]) wrong.push({ capability: 'counting', count, color: query.object.color, shape: query.object.shape });
            break;
          }
          case 'counting':
            wrong.push({ ...query, count: query.count === 2 ? 3 : 2 });
            for (const color of other(COLOR_NAMES, query.color)) wrong.push({ ...query, color });
            for (const shape of other(SHAPE_NAMES, query.shape)) wrong.push({ ...query, shape });
            wrong.push({ capability: 'single', object: { color: query.color, shape: query.shape } });
            break;
          case 'relations': {
            if (scene.capability !== 'relations') throw new Error('scene/query mismatch');
            for (const relation of other(Object.keys(opposite) as Relation[], query.relation)) wrong.push({ ...query, relation });
            wrong.push({ ...query, a: query.b, b: query.a });
            // Every mutant of A is wrong: B's description fits only the second object (the two differ in colour or
            // shape), so A's would have to fit the first, which by construction it no longer does.
            for (const a of objectMutants(query.a, scene.objects[0])) wrong.push({ ...query, a });
            for (const b of objectMutants(query.b, scene.objects[1])) wrong.push({ ...query, b });
            break;
          }
          case 'text': {
            const w = query.word;
            const flip = String.fromCharCode(65 + ((w.charCodeAt(0) - 65 + 1 + (seed % 25)) % 26));
            wrong.push({ capability: 'text', word: flip + w.slice(1) });
            wrong.push({ capability: 'text', word: w.slice(0, -1) });
            wrong.push({ capability: 'text', word: w + 'A' });
            wrong.push({ capability: 'single', object: { color: 'yellow', shape: 'square' } });
            break;
          }
        }
        for (const q of wrong) {
          checked++;
          if (satisfies(det, q)) t.fail(`seed ${seed}: "${formatQuery(query)}" image accepted "${formatQuery(q)}"`);
        }
      }
    }
    t.true(checked > 1000);
  });

  test(`S=${side}: only background and palette pixels; objects apart, 2 px from the border, found where drawn`, (t) => {
    const allowed = new Set([[255, 255, 255], ...Object.values(COLORS)].map((c) => c.join(',')));
    for (const capability of CAPABILITIES) {
      for (const { seed, scene, image } of scenes(side, capability, 100)) {
        for (let p = 0; p < image.data.length; p += 3) {
          if (!allowed.has(`${image.data[p]},${image.data[p + 1]},${image.data[p + 2]}`)) return t.fail(`seed ${seed}: off-palette pixel ${p / 3}`);
        }
        if (scene.capability === 'text') continue;
        const boxes = scene.objects.map((o) => ({ x: o.x, y: o.y, w: o.d, h: o.d }));
        for (const [i, b] of boxes.entries()) {
          t.true(b.x >= MARGIN && b.y >= MARGIN && b.x + b.w <= side - MARGIN && b.y + b.h <= side - MARGIN, `seed ${seed}: border`);
          t.is(b.w, objectSide(side, scene.objects[i]!.size));
          for (const c of boxes.slice(0, i)) t.true(boxesApart(b, c), `seed ${seed}: gap`);
        }
        const found = detect(image).objects.map((o) => [o.x, o.y, o.width, o.height].join(',')).sort();
        t.deepEqual(found, boxes.map((b) => [b.x, b.y, b.w, b.h].join(',')).sort(), `seed ${seed}`);
      }
    }
  });
}

test('sizes and thresholds follow the spec: d = 12/20 at 64, 6/10 at 32, 24/40 at 128; minimum component 12 px at 64', (t) => {
  t.deepEqual(SIDES.map((s) => SIZE_NAMES.map((z) => objectSide(s, z))), [[6, 10], [12, 20], [24, 40]]);
  t.deepEqual(SIDES.map(minComponentPixels), [3, 12, 48]);
});

test('held-out pairs never appear in train and all appear in test', async (t) => {
  const seen = { train: new Set<string>(), test: new Set<string>() };
  for (const split of ['train', 'test'] as const) {
    for await (const ex of openSource({ kind: 'shapes', size: 32, count: 1500, split, seed: 7, capabilities: ['single', 'counting', 'relations'] })) {
      for (const o of detect(ex.image).objects) if (o.shape && isHeldOut(o.color, o.shape)) seen[split].add(`${o.color} ${o.shape}`);
      const q = parseCaption(ex.caption);
      const named = q.capability === 'single' ? [q.object] : q.capability === 'relations' ? [q.a, q.b] : q.capability === 'counting' ? [q] : [];
      for (const o of named) if (isHeldOut(o.color, o.shape)) seen[split].add(`${o.color} ${o.shape}`);
    }
  }
  t.deepEqual([...seen.train], []);
  t.deepEqual([...seen.test].sort(), HELD_OUT.map(([c, s]) => `${c} ${s}`).sort());
});

test('same seed gives identical bytes and captions; another seed does not', (t) => {
  const run = (seed: number) => [...shapesExamples({ kind: 'shapes', size: 64, count: 40, split: 'train', seed })];
  const [a, b, c] = [run(3), run(3), run(4)];
  t.deepEqual(a.map((e) => e.caption), b.map((e) => e.caption));
  t.true(a.every((e, i) => Buffer.from(e.image.data).equals(Buffer.from(b[i]!.image.data))));
  t.notDeepEqual(a.map((e) => e.caption), c.map((e) => e.caption));
});

test('caption parsing round-trips every phrasing', (t) => {
  const specs: ObjectSpec[] = COLOR_NAMES.flatMap((color) =>
    SHAPE_NAMES.flatMap((shape) => [{ color, shape }, ...SIZE_NAMES.map((size) => ({ color, shape, size }))]),
  );
  const queries: Query[] = [
    ...specs.map((object): Query => ({ capability: 'single', object })),
    ...COLOR_NAMES.flatMap((color) => SHAPE_NAMES.flatMap((shape) => [2, 3].map((count): Query => ({ capability: 'counting', count, color, shape })))),
    ...['AB', 'XYZ', 'QUIZ', 'OK'].map((word): Query => ({ capability: 'text', word })),
  ];
  for (const q of queries) t.deepEqual(parseCaption(formatQuery(q)), q, formatQuery(q));
  for (const [i, a] of specs.entries()) {
    const b = specs[(i * 37 + 11) % specs.length]!;
    for (const [relation, phrases] of Object.entries(RELATION_PHRASES) as Array<[Relation, readonly string[]]>) {
      for (const phrase of phrases) {
        const q: Query = { capability: 'relations', a, relation, b };
        const caption = formatQuery(q, phrase);
        t.true(caption.includes(` ${phrase} `));
        t.deepEqual(parseCaption(caption), q, caption);
      }
    }
  }
  t.is(parseCaption('  Three   RED crosses ').capability, 'counting');
  t.deepEqual(parseCaption('two yellow crosss'), { capability: 'counting', count: 2, color: 'yellow', shape: 'cross' });
  t.is(formatQuery({ capability: 'counting', count: 3, color: 'red', shape: 'cross' }), 'three red crosses');
  for (const bad of ['a red hexagon', 'four red circles', 'a sign that says toolong', 'a red circle near a blue square', '']) {
    t.throws(() => parseCaption(bad), { instanceOf: DalleError, message: /grammar/ }, bad);
  }
});

test('generated captions are lower-case ASCII and mix every phrasing', (t) => {
  const phrasings = new Set<string>();
  for (let seed = 0; seed < 600; seed++) {
    const { caption } = drawScene(64, seed);
    t.regex(caption, /^[a-z ]+$/);
    for (const p of Object.values(RELATION_PHRASES).flat()) if (caption.includes(` ${p} a `)) phrasings.add(p);
    const q = parseCaption(caption);
    if (q.capability === 'single') phrasings.add(q.object.size ? 'sized' : 'unsized');
  }
  t.deepEqual([...phrasings].sort(), [...Object.values(RELATION_PHRASES).flat(), 'sized', 'unsized'].sort());
});

test('font: 26 glyphs, pairwise at least 2 pixels apart, each read back alone on a sign', (t) => {
  t.is(LETTERS, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
  const glyphs = [...GLYPHS.values()];
  for (const [i, g] of glyphs.entries()) {
    for (const h of glyphs.slice(0, i)) t.true(g.reduce((n, v, k) => n + (v === h[k] ? 0 : 1), 0) >= 2);
  }
  for (const side of SIDES) {
    for (let k = 0; k < 26; k += 2) {
      const word = LETTERS.slice(k, k + 2) + LETTERS[(k + 7) % 26]!;
      const image = renderScene({ capability: 'text', side, sign: placeSign(side, word, mulberry32(k)) });
      t.true(satisfies(detect(image), { capability: 'text', word }), `${word} at ${side}`);
    }
  }
});

test('the detector maps near colours to the palette, far ones to noise, and drops specks', (t) => {
  const side = 64;
  const image: ImageRGB = { width: side, height: side, data: new Uint8Array(side * side * 3).fill(255) };
  const put = (x: number, y: number, rgb: readonly number[]) => image.data.set(rgb, (y * side + x) * 3);
  for (let y = 10; y < 22; y++) for (let x = 10; x < 22; x++) put(x, y, [220 + 20, 40 - 20, 40 + 20]); // 35 from red
  put(40, 40, [128, 128, 128]); // 110+ from everything: noise
  for (let x = 50; x < 61; x++) put(x, 50, COLORS.blue); // 11 px: under the 12 px minimum
  const det = detect(image);
  t.is(det.noisePixels, 1);
  t.deepEqual(det.objects.map((o) => [o.color, o.shape, o.size]), [['red', 'square', 'small']]);
  t.true(satisfies(det, parseCaption('a small red square')));
});

test('scoreSamples reports the fraction per capability, held-out captions also under heldout', (t) => {
  const samples = CAPABILITIES.flatMap((c) => scenes(64, c, 20)).map((s) => ({ caption: s.caption, image: s.image }));
  const blank: ImageRGB = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(255) };
  samples.push({ caption: 'a purple triangle', image: blank });
  const report = scoreSamples(samples);
  t.deepEqual(report.single, { samples: 21, satisfied: 20, fraction: 20 / 21 });
  for (const c of ['counting', 'relations', 'text'] as const) t.is(report[c].fraction, 1);
  t.true(report.heldout.samples >= 1 && report.heldout.satisfied === report.heldout.samples - 1);
});

test('openSource: async iteration, count, keys, empty skip report, shards partition the split, opens by kind', async (t) => {
  const spec = { kind: 'shapes' as const, size: 32, count: 30, split: 'test' as const, seed: 1 };
  const all: string[] = [];
  const src = openSource(spec);
  for await (const ex of src) {
    all.push(ex.key);
    t.is(ex.image.width, 32);
    t.is(ex.image.data.length, 32 * 32 * 3);
  }
  t.is(all.length, 30);
  t.is(new Set(all).size, 30);
  t.deepEqual(src.skipped, { skipped: 0, reasons: {}, samples: [] });
  const sharded: string[] = [];
  for (let index = 0; index < 3; index++) {
    for await (const ex of await openSourceSpec({ ...spec, shard: { index, count: 3, block: 4 } })) sharded.push(ex.key);
  }
  t.deepEqual(sharded.sort(), [...all].sort());
});

test('bad specs are E_INVALID_ARGUMENT', (t) => {
  const bad = [{ size: 48 }, { count: -1 }, { count: 1.5 }, { split: 'val' }, { seed: 0.5 }, { capabilities: [] }, { capabilities: ['colour'] }];
  for (const b of bad) {
    t.throws(() => openSource({ kind: 'shapes', ...b } as never), { instanceOf: DalleError, message: /shapes/ }, JSON.stringify(b));
    t.is((t.throws(() => openSource({ kind: 'shapes', ...b } as never)) as DalleError).code, 'E_INVALID_ARGUMENT');
  }
  t.throws(() => generateScene(100, 'single', mulberry32(0)), { instanceOf: DalleError });
  t.throws(() => detect({ width: 4, height: 4, data: new Uint8Array(3) }), { instanceOf: DalleError });
});

test('sampled-image tolerance: exact under ±15 per-channel noise, ≥95% with 0.5% of pixels recoloured at random', (t) => {
  const rand = mulberry32(99);
  for (const side of SIDES) {
    let [exact, salted, n] = [0, 0, 0];
    for (const capability of CAPABILITIES) {
      for (const { image, query } of scenes(side, capability, 40)) {
        n++;
        const noisy = { ...image, data: image.data.map((v) => Math.max(0, Math.min(255, v + Math.round((rand() * 2 - 1) * 15)))) };
        exact += satisfies(detect(noisy), query) ? 1 : 0;
        const salt = { ...image, data: image.data.slice() };
        for (let p = 0; p < side * side; p++) if (rand() < 0.005) salt.data.set(COLORS[COLOR_NAMES[Math.floor(rand() * 8)]!], p * 3);
        salted += satisfies(detect(salt), query) ? 1 : 0;
      }
    }
    t.is(exact, n, `S=${side}`);
    t.true(salted >= 0.95 * n, `S=${side}: ${salted}/${n}`);
  }
});

test('the detector reads a non-square image (a 64-wide scene with white rows added below)', (t) => {
  for (const capability of CAPABILITIES) {
    for (const { image, query } of scenes(64, capability, 10)) {
      const tall: ImageRGB = { width: 64, height: 80, data: new Uint8Array(64 * 80 * 3).fill(255) };
      tall.data.set(image.data);
      t.true(satisfies(detect(tall), query), formatQuery(query));
    }
  }
});

test('evaluationPrompts: a fixed list, per capability plus every held-out pair, all parseable', (t) => {
  const prompts = evaluationPrompts();
  t.deepEqual(evaluationPrompts(), prompts);
  t.is(prompts.length, 4 * 25 + HELD_OUT.length * 6);
  for (const p of prompts) t.deepEqual(parseCaption(p.caption), p.query, p.caption);
  const held = prompts.filter((p) => queryHasHeldOut(p.query));
  t.is(held.length, HELD_OUT.length * 6);
  for (const c of CAPABILITIES) t.is(prompts.filter((p) => p.query.capability === c && !queryHasHeldOut(p.query)).length, 25, c);
  for (const [color, shape] of HELD_OUT) t.true(held.some((p) => p.caption.includes(`${color} ${shape}`)), `${color} ${shape}`);
});
