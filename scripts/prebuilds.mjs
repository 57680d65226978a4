// The binaries the npm package ships, built here:
//   npm run build:prebuilds             prebuilds/<platform>-<arch>/dalle.node: the CPU binary (DALLE_CUDA=OFF), stripped.
//   npm run build:prebuilds -- --cuda  also build-packages/dalle-engine-<platform>-<arch>-cuda/: the optional platform
//                             package with the CUDA binary (sm_80 and sm_90a by default; DALLE_CUDA_ARCHS overrides),
//                             stripped, with a package.json whose os/cpu/libc make npm install it only where it runs.
// Prints each binary's size.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const platformArch = `${process.platform}-${process.arch}`;
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`prebuild: ${cmd} ${args.join(' ')} failed (status ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

function build(outDir, defines) {
  run(process.execPath, [cmakeJs, 'compile', '--out', outDir, ...defines.map((d) => `--CD${d}`)]);
  return join(root, outDir, 'Release', 'dalle.node');
}

function place(binary, dest) {
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(binary, dest);
  // Symbols are for debugging our build, not for users' disks; strip is binutils, present wherever g++ is.
  if (process.platform === 'linux') run('strip', ['--strip-unneeded', dest]);
  const mb = statSync(dest).size / 2 ** 20;
  console.log(`prebuild: ${dest} (${mb.toFixed(2)} MiB)`);
}

place(build('build-prebuild-cpu', ['DALLE_CUDA=OFF', 'DALLE_WERROR=ON']), join(root, 'prebuilds', platformArch, 'dalle.node'));

if (process.argv.includes('--cuda')) {
  const archs = process.env.DALLE_CUDA_ARCHS ?? '80;90a';
  const dir = join(root, 'build-packages', `${pkg.name}-${platformArch}-cuda`);
  place(build('build-prebuild-cuda', ['DALLE_CUDA=ON', `DALLE_CUDA_ARCHS=${archs}`]), join(dir, 'dalle.node'));
  const manifest = {
    name: `${pkg.name}-${platformArch}-cuda`,
    version: pkg.version,
    description: `The CUDA binary of ${pkg.name} for ${platformArch} (GPU architectures ${archs}); installed beside ${pkg.name}, which loads it when an NVIDIA driver is present`,
    license: pkg.license,
    os: [process.platform],
    cpu: [process.arch],
    ...(process.platform === 'linux' ? { libc: ['glibc'] } : {}),
    files: ['dalle.node', 'README.md'],
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  writeFileSync(
    join(dir, 'README.md'),
    `# ${manifest.name}\n\nThe CUDA build of [${pkg.name}](https://www.npmjs.com/package/${pkg.name}) for ${platformArch}, compiled for GPU architectures ${archs} with cudart linked statically (cuBLASLt is opened at run time). Do not install it directly: ${pkg.name} lists it as an optional dependency and its loader uses it when an NVIDIA driver is present.\n`,
  );
  console.log(`prebuild: ${dir} (npm pack it there)`);
}
