/**
 * The package as a user gets it: `npm pack`, then `npm install` of the tarball into an empty folder with no network
 * (npm's cache only), then `npx dalle generate`, `npx dalle inspect` and the API.
 * Needs the prebuilt CPU binary (`npm run build:prebuilds`); CI builds it and sets DALLE_REQUIRE_PREBUILDS=1, so there
 * the test runs instead of skipping. The CUDA platform package is installed beside it when it was built too.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { decodeImage } from '../lib/data/image.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PREBUILT = join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'dalle.node');
const CUDA_PACKAGE = join(ROOT, 'build-packages', `dalle-engine-${process.platform}-${process.arch}-cuda`);

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('npm pack → offline install into an empty folder → dalle generate and the API work from the prebuilt binary', async (t) => {
  if (!existsSync(PREBUILT)) {
    if (process.env.DALLE_REQUIRE_PREBUILDS === '1') return t.fail(`DALLE_REQUIRE_PREBUILDS=1 but ${PREBUILT} is missing (npm run build:prebuilds)`);
    t.log('skipped: no prebuilt binary (npm run build:prebuilds)');
    return t.pass();
  }
  const packs = mkdtempSync(join(tmpdir(), 'dalle-pack-'));
  const packed = await sh('npm', ['pack', '--json', '--pack-destination', packs], ROOT);
  t.is(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  for (const want of [`prebuilds/${process.platform}-${process.arch}/dalle.node`, 'weights/default.model.json', 'weights/shapes32-clip.safetensors', 'dist/lib/cli/main.js', 'dist/lib/api/generate-worker.js', 'scripts/install.mjs']) {
    t.true(files.includes(want), `the package lacks ${want}`);
  }
  for (const unwanted of ['test/', 'benchmarks/', '.scratch/', 'build/', 'node_modules/']) t.false(files.some((f) => f.startsWith(unwanted)), `the package holds ${unwanted}`);
  t.log(`${info!.filename}: ${(info!.size / 2 ** 20).toFixed(1)} MiB packed, ${(info!.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`);
  const tarballs = [join(packs, info!.filename)];
  if (existsSync(join(CUDA_PACKAGE, 'dalle.node'))) {
    const cuda = await sh('npm', ['pack', '--json', '--pack-destination', packs], CUDA_PACKAGE);
    t.is(cuda.code, 0, cuda.stderr);
    const [c] = JSON.parse(cuda.stdout.slice(cuda.stdout.indexOf('['))) as Array<{ filename: string; size: number }>;
    t.log(`${c!.filename}: ${(c!.size / 2 ** 20).toFixed(1)} MiB packed`);
    tarballs.push(join(packs, c!.filename));
  }

  const emptyApp = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'dalle-app-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    return dir;
  };
  // npm resolves dependency ranges from registry metadata, which a checkout's lockfile install does not cache: one
  // install that may use the registry (as a user's would) fills the cache. The one under test then has no network:
  // --offline makes npm use its cache only and fail rather than fetch, so the package itself downloads nothing.
  const warm = await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], emptyApp(), { DALLE_BINARY: '' });
  t.is(warm.code, 0, warm.stderr);
  const app = emptyApp();
  const offline = { npm_config_offline: 'true', DALLE_BINARY: '', DALLE_BACKEND: '' };
  const installed = await sh('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs], app, offline);
  t.is(installed.code, 0, installed.stdout + installed.stderr);
  // npm 11 runs a dependency's install script only once the user allows it; with the prebuilt binary nothing needs to.
  t.false(existsSync(join(app, 'node_modules', 'dalle-engine', 'build')), 'nothing was compiled');
  if (tarballs.length > 1) t.true(existsSync(join(app, 'node_modules', `dalle-engine-${process.platform}-${process.arch}-cuda`, 'dalle.node')), 'the CUDA package sits beside it');

  const gen = await sh('npx', ['--offline', 'dalle', 'generate', 'a red circle', '-n', '4', '--keep', '2', '--scale', '1', '-o', 'out.png'], app, offline);
  t.is(gen.code, 0, gen.stderr);
  const grid = decodeImage(readFileSync(join(app, 'out.png')), 'out.png');
  t.like(grid, { width: 2 * 32 + 3, height: 32 + 2 }); // two images, 1-px gaps

  const inspect = await sh('npx', ['--offline', 'dalle', 'inspect', '--json'], app, offline);
  t.is(inspect.code, 0, inspect.stderr);
  const report = JSON.parse(inspect.stdout) as Record<string, string>;
  t.regex(report.binary!, new RegExp(`node_modules/dalle-engine/prebuilds/${process.platform}-${process.arch}/dalle.node \\(cpu prebuild\\)`));
  t.log(`inspect: binary ${report.binary}; why not cuda: ${report['why not cuda']}`);

  const script = "import { Dalle } from 'dalle-engine'; const d = await Dalle.load(); const r = await d.generate('a blue square', { n: 2 }); await d.dispose(); console.log(r.backend, r.images.length, r.images[0].png.length > 0);";
  const api = await sh(process.execPath, ['--input-type=module', '-e', script], app, offline);
  t.is(api.code, 0, api.stderr);
  t.is(api.stdout.trim(), 'cpu 2 true');
  const prebuiltSize = statSync(PREBUILT).size;
  t.log(`prebuilt CPU binary ${(prebuiltSize / 2 ** 20).toFixed(2)} MiB; app node_modules: ${readdirSync(join(app, 'node_modules')).length} packages`);
});
