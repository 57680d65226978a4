// The static resource table of every CUDA kernel (native/cuda/RESOURCES.md): each *.cu under native/ compiled by
// nvcc for sm_90a with ptxas' verbose report, one row per kernel: registers, spills, static shared memory, stack.
//   node scripts/cuda-resources.mjs           rewrites the table
//   node scripts/cuda-resources.mjs --check   fails when the checked-in table is stale (skipped without nvcc)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tablePath = join(root, 'native/cuda/RESOURCES.md');
const check = process.argv.includes('--check');
const arch = 'sm_90a';

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const nvcc = which('nvcc');
if (!nvcc) {
  console.log(`no nvcc on PATH: ${check ? 'the resource table check is skipped' : 'cannot build the table'}`);
  process.exit(check ? 0 : 1);
}
const cufilt = [join(dirname(nvcc), 'cu++filt'), which('cu++filt'), which('c++filt')].find((p) => p && which(p));
const release = /release ([\d.]+)/.exec(execFileSync(nvcc, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';

const sources = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', 'native/*.cu', 'native/**/*.cu'], {
  cwd: root,
  encoding: 'utf8',
})
  .split('\n')
  .filter(Boolean)
  .sort();

const work = mkdtempSync(join(tmpdir(), 'cuda-resources-'));

function compile(file, index) {
  const args = ['-std=c++17', '-O3', `-arch=${arch}`, '--expt-relaxed-constexpr', '-DDALLE_WITH_CUDA=1', '-I', 'native'];
  args.push('-Xptxas', '-v', '-c', file, '-o', join(work, `${index}.o`));
  return new Promise((resolve, reject) => {
    const child = spawn(nvcc, args, { cwd: root });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(err) : reject(new Error(`nvcc failed on ${file}:\n${err}`))));
  });
}

function demangle(names) {
  if (names.length === 0 || !cufilt) return names;
  const out = execFileSync(cufilt, [], { input: names.join('\n'), encoding: 'utf8' }).trim().split('\n');
  return out.map((n) =>
    n
      .replace(/_GLOBAL__N__[0-9a-f_]+[A-Za-z0-9_]*::/g, '')
      .replace(/\(anonymous namespace\)::/g, '')
      .replace(/\bdalle::/g, ''),
  );
}

// ptxas prints, per entry function: "Compiling entry function '<mangled>' for 'sm_90a'", then "Function properties for
// <mangled>" with stack and spills, then "Used N registers, used B barriers, S bytes smem, ...".
function parse(log) {
  const kernels = [];
  let current = null;
  let props = null;
  for (const line of log.split('\n')) {
    let m;
    if ((m = /Compiling entry function '([^']+)'/.exec(line))) {
      current = { mangled: m[1], registers: 0, spillStores: 0, spillLoads: 0, smem: 0, stack: 0, barriers: 0 };
      kernels.push(current);
      props = null;
    } else if ((m = /Function properties for (\S+)/.exec(line))) {
      props = current && m[1] === current.mangled ? current : null;
    } else if ((m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line))) {
      if (props) [props.stack, props.spillStores, props.spillLoads] = [m[1], m[2], m[3]].map(Number);
    } else if (/Used \d+ registers/.test(line) && current) {
      current.registers = Number(/Used (\d+) registers/.exec(line)[1]);
      current.barriers = Number(/used (\d+) barriers/.exec(line)?.[1] ?? 0);
      current.smem = Number(/(\d+) bytes smem/.exec(line)?.[1] ?? 0);
    }
  }
  return kernels;
}

const logs = new Array(sources.length);
let next = 0;
async function worker() {
  while (next < sources.length) {
    const i = next++;
    logs[i] = await compile(sources[i], i);
  }
}
try {
  await Promise.all([worker(), worker()]);
} catch (err) {
  console.error(String(err.message ?? err));
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });

let total = 0;
const sections = [];
sources.forEach((file, i) => {
  const kernels = parse(logs[i]);
  if (kernels.length === 0) return;
  const names = demangle(kernels.map((k) => k.mangled));
  kernels.forEach((k, j) => (k.name = names[j]));
  kernels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  total += kernels.length;
  const rows = kernels.map(
    (k) =>
      `| \`${k.name.replace(/\|/g, '\\|')}\` | ${k.registers} | ${k.spillStores} | ${k.spillLoads} | ${k.smem} | ${k.stack} | ${k.barriers} |` +
      (k.spillStores + k.spillLoads > 0 ? ' ⚠ spills' : ''),
  );
  sections.push(
    `## ${file}\n\n| kernel | registers | spill stores (B) | spill loads (B) | static smem (B) | stack (B) | barriers |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
});

const table = `# CUDA kernel resources (sm_90a)

What ptxas reports for every kernel, compiled by CUDA ${release} for ${arch} (\`nvcc -O3 -arch=${arch} -Xptxas -v\`):
registers per thread, bytes spilled to local memory (stores and loads), static shared memory, stack frame, and named
barriers. Dynamic shared memory is chosen at launch and is not shown. Written by \`node scripts/cuda-resources.mjs\`;
\`test/cuda-resources.test.ts\` fails when this file is stale. ${total} kernels in ${sections.length} files.

${sections.join('\n')}`;

if (check) {
  let old = '';
  try {
    old = readFileSync(tablePath, 'utf8');
  } catch {
    // a missing table is stale
  }
  if (old !== table) {
    const a = old.split('\n');
    const b = table.split('\n');
    const k = b.findIndex((line, i) => line !== a[i]);
    console.error(`native/cuda/RESOURCES.md is stale (first difference at line ${k + 1}):`);
    console.error(`  checked in: ${a[k] ?? '(end of file)'}\n  now:        ${b[k]}`);
    console.error('run node scripts/cuda-resources.mjs');
    process.exit(1);
  }
  console.log(`RESOURCES.md is up to date (${total} kernels in ${sections.length} files)`);
} else {
  writeFileSync(tablePath, table);
  console.log(`wrote native/cuda/RESOURCES.md (${total} kernels in ${sections.length} files)`);
}
