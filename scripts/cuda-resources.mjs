// The static resource table of every CUDA kernel (native/cuda/RESOURCES.md): each *.cu under native/ compiled by
// nvcc for sm_90a with ptxas' verbose report, one row per kernel: registers, spills, static shared memory, stack.
//   node scripts/cuda-resources.mjs           rewrites the table
//   node scripts/cuda-resources.mjs --check   fails when the checked-in table is stale (skipped without nvcc)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tablePath = join(root, 'native/cuda/RESOURCES.md');
const check = process.argv.includes('--check');
const arch = 'sm_90a';
const jobs = 2; // the developers' and CI's machines have two cores

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', 'command -v "$0"', cmd], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const nvcc = which('nvcc');
if (!nvcc) {
  console.log(`no nvcc on PATH: ${check ? 'the resource table check is skipped' : 'cannot build the table'}`);
  process.exit(check ? 0 : 1);
}
const release = /release ([\d.]+)/.exec(execFileSync(nvcc, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';

// The nvcc on PATH may be a wrapper script elsewhere; a dry run names the toolkit's real bin folder, where cu++filt is.
function toolkitBin() {
  try {
    const out = execFileSync(nvcc, ['-dryrun', '-c', 'x.cu', '-o', '/dev/null'], { encoding: 'utf8', stdio: 'pipe' });
    return /_HERE_=(.+)/.exec(out)?.[1]?.trim();
  } catch (err) {
    return /_HERE_=(.+)/.exec(String(err.stderr ?? ''))?.[1]?.trim();
  }
}
function findDemangler() {
  for (const dir of [toolkitBin() ?? '', dirname(nvcc)]) if (dir && existsSync(join(dir, 'cu++filt'))) return join(dir, 'cu++filt');
  return which('cu++filt') || which('c++filt');
}
const demangler = findDemangler();
if (!demangler) {
  // Mangled names carry the anonymous namespace's per-compile hash, which would make the table churn.
  console.error('neither cu++filt nor c++filt found: cannot name the kernels');
  process.exit(1);
}

const sources = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', 'native/*.cu', 'native/**/*.cu'], {
  cwd: root,
  encoding: 'utf8',
})
  .split('\n')
  .filter((f) => f && existsSync(join(root, f))) // a file deleted but not yet staged is still listed
  .sort();

const work = mkdtempSync(join(tmpdir(), 'cuda-resources-'));

function compile(file, index) {
  const args = ['-std=c++17', '-O3', `-arch=${arch}`, '--expt-relaxed-constexpr', '-DDALLE_WITH_CUDA=1', '-I', 'native'];
  args.push('-Xptxas', '-v', '-c', file, '-o', join(work, `${index}.o`));
  return new Promise((resolve, reject) => {
    const child = spawn(nvcc, args, { cwd: root });
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    child.stdout.on('data', (d) => (log += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(log) : reject(new Error(`nvcc failed on ${file}:\n${log}`))));
  });
}

// After demangling, an anonymous namespace reads "(anonymous namespace)::" (c++filt) or keeps its raw
// "_GLOBAL__N__<hash>_<file>_<counter>::" form; the hash and counter change from machine to machine and even from
// one compile to the next, so they must never reach the table.
function demangle(names) {
  const out = execFileSync(demangler, [], { input: names.join('\n'), encoding: 'utf8' }).split('\n');
  return names.map((_, i) =>
    out[i]
      .trim()
      .replace(/_GLOBAL__N__\w*::/g, '')
      .replace(/\(anonymous namespace\)::|<unnamed>::/g, '')
      .replace(/\bdalle::/g, ''),
  );
}

// ptxas prints, per entry function: "Compiling entry function '<mangled>' for 'sm_90a'", then "Function properties for
// <mangled>" followed by its stack and spills, then "Used N registers, used B barriers, S bytes smem, ...". Non-entry
// device functions get a "Function properties" block of their own, which must not land on the kernel before them.
function parse(log) {
  const kernels = [];
  let current = null;
  let props = null;
  const field = (line, re) => Number(re.exec(line)?.[1] ?? 0);
  for (const line of log.split('\n')) {
    let m;
    if ((m = /Compiling entry function '([^']+)'/.exec(line))) {
      current = { mangled: m[1], registers: 0, spillStores: 0, spillLoads: 0, smem: 0, stack: 0, barriers: 0 };
      kernels.push(current);
      props = null;
    } else if ((m = /Function properties for (\S+)/.exec(line))) {
      props = current && m[1] === current.mangled ? current : null;
    } else if (/bytes stack frame/.test(line)) {
      if (props) {
        props.stack = field(line, /(\d+) bytes stack frame/);
        props.spillStores = field(line, /(\d+) bytes spill stores/);
        props.spillLoads = field(line, /(\d+) bytes spill loads/);
      }
    } else if (/Used \d+ registers/.test(line) && current) {
      current.registers = field(line, /Used (\d+) registers/);
      current.barriers = field(line, /used (\d+) barriers/);
      current.smem = field(line, /(\d+) bytes smem/);
    }
  }
  return kernels;
}

// Two compiles at a time; after a failure no new one starts, and the ones under way finish before we exit.
const logs = new Array(sources.length);
let next = 0;
let failure = null;
async function worker() {
  while (next < sources.length && !failure) {
    const i = next++;
    try {
      logs[i] = await compile(sources[i], i);
    } catch (err) {
      failure ??= err;
    }
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
rmSync(work, { recursive: true, force: true });
if (failure) {
  console.error(String(failure.message ?? failure));
  process.exit(1);
}

const header = '| kernel | registers | spill stores (B) | spill loads (B) | static smem (B) | stack (B) | barriers |';
let total = 0;
const sections = [];
const empty = [];
sources.forEach((file, i) => {
  const kernels = parse(logs[i]);
  if (kernels.length === 0) return empty.push(file);
  const names = demangle(kernels.map((k) => k.mangled));
  kernels.forEach((k, j) => (k.name = names[j]));
  kernels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  total += kernels.length;
  const code = (name) => `\`${name.replace(/\|/g, '\\|')}\``;
  const spills = (k) => k.spillStores + k.spillLoads > 0;
  // The mark goes inside the kernel cell: text after a row's last pipe is dropped when the table is rendered.
  const rows = kernels.map(
    (k) =>
      `| ${code(k.name)}${spills(k) ? ' ⚠ spills' : ''} | ${k.registers} | ${k.spillStores} | ${k.spillLoads} | ${k.smem} | ${k.stack} | ${k.barriers} |`,
  );
  const spilling = kernels.filter(spills);
  const note = spilling.length ? `\n⚠ Spills to local memory: ${spilling.map((k) => code(k.name)).join(', ')}.\n` : '';
  sections.push(`## ${file}\n\n${header}\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n${note}`);
});

const table = `# CUDA kernel resources (sm_90a)

What ptxas reports for every kernel, compiled by CUDA ${release} for ${arch} (\`nvcc -O3 -arch=${arch} -Xptxas -v\`):
registers per thread, bytes spilled to local memory (stores and loads), static shared memory, stack frame, and
barriers (\`__syncthreads\` uses one). Dynamic shared memory is chosen at launch and is not shown.
Written by \`node scripts/cuda-resources.mjs\`; \`test/cuda-resources.test.ts\` fails when this file is stale.
${total} kernels in ${sections.length} files.

${sections.join('\n')}${empty.length ? `\nNo kernels in: ${empty.join(', ')}.\n` : ''}`;

// git is needed anyway (to list the sources), and its diff is one everybody reads.
function diff(oldText, newText) {
  const dir = mkdtempSync(join(tmpdir(), 'cuda-resources-'));
  writeFileSync(join(dir, 'checked-in'), oldText);
  writeFileSync(join(dir, 'now'), newText);
  const r = spawnSync('git', ['diff', '--no-index', '--no-color', 'checked-in', 'now'], { cwd: dir, encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  return r.stdout.split('\n').slice(2).join('\n').trimEnd(); // without the "diff --git" and "index" lines
}

if (check) {
  let old = '';
  try {
    old = readFileSync(tablePath, 'utf8');
  } catch {
    // a missing table is stale
  }
  if (old !== table) {
    console.error(diff(old, table));
    console.error('native/cuda/RESOURCES.md is stale: run node scripts/cuda-resources.mjs');
    process.exit(1);
  }
  console.log(`RESOURCES.md is up to date (${total} kernels in ${sections.length} files)`);
} else {
  writeFileSync(tablePath, table);
  console.log(`wrote native/cuda/RESOURCES.md (${total} kernels in ${sections.length} files)`);
}
