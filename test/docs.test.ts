import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('npm run docs builds the API site without a warning, starting from the Node API', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dalle-docs-'));
  const typedoc = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const run = await new Promise<{ code: number; output: string }>((done) => {
    execFile(process.execPath, [typedoc, '--treatWarningsAsErrors', '--out', out], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) =>
      done({ code: err ? 1 : 0, output: stdout + stderr }),
    );
  });
  t.is(run.code, 0, run.output);
  const dalle = join(out, 'classes', 'api.Dalle.html');
  t.true(existsSync(dalle));
  const page = readFileSync(dalle, 'utf8');
  for (const member of ['load', 'generate', 'dispose', 'backend']) t.regex(page, new RegExp(`id="${member}"`), member);
  t.true(existsSync(join(out, 'interfaces', 'api.GenerateOptions.html')));
});
