/**
 * Opens an HTML file in headless Chromium (Debian's `chromium`) and returns what its page script wrote into
 * `body[data-check]`. Returns null when no Chromium is installed; CI sets DALLE_REQUIRE_CHROMIUM=1 so that a missing
 * browser fails there instead of skipping.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export function chromiumPath(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
    } catch {
      // not this one
    }
  }
  return null;
}

export function renderedCheck(htmlPath: string): Promise<string> {
  const browser = chromiumPath();
  if (browser === null) throw new Error('no chromium');
  const profile = mkdtempSync(join(tmpdir(), 'dalle-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', pathToFileURL(htmlPath).href];
  return new Promise((done, fail) => {
    execFile(browser, args, { timeout: 90_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return fail(new Error(`chromium failed: ${err.message}\n${stderr}`));
      const m = /<body[^>]*data-check="([^"]*)"/.exec(stdout);
      done(m ? m[1]! : `no data-check in the dumped page (${stdout.length} bytes)`);
    });
  });
}
