/**
 * `dalle tokenizer train` (BPE on a dataset's captions), `dalle convert` (weights to bf16 and back), `dalle inspect`
 * (what this install can run, and why not CUDA) and `dalle bench` (generation speed of a model on this machine).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { resolve } from 'node:path';

import { type Command, Option } from 'commander';

import { Dalle } from '../api/dalle.js';
import { defaultModelPath, readManifest } from '../api/model-files.js';
import { buildInfo } from '../engine.js';
import { DalleError } from '../errors.js';
import { castFloating, readSafetensors, writeSafetensors } from '../formats/safetensors.js';
import { candidates, loadedBinary, packageRoot, probeNvidiaDriver } from '../native/loader.js';
import { saveHfJson } from '../tokenizer/formats.js';
import { trainBpe } from '../tokenizer/train.js';
import { CHECKPOINT_FORMAT } from '../train/checkpoint.js';
import { prepareOutputFile } from './files.js';
import { intOption } from './options.js';
import { Progress } from './progress.js';
import { addDataOptions, type CommonTrainFlags, trainingData } from './training.js';

export function registerToolCommands(program: Command): void {
  const tokenizer = program.command('tokenizer').description('byte-level BPE tokenizers');
  addDataOptions(tokenizer.command('train').description('train a BPE tokenizer on the captions of a dataset'))
    .requiredOption('-o, --out <file>', 'where the tokenizer goes (Hugging Face tokenizer.json format)')
    .option('--vocab <n>', 'vocabulary size, the 256 byte tokens included', intOption(257), 512)
    .option('--captions <n>', 'captions to read at most', intOption(1), 100000)
    .action(async (flags: CommonTrainFlags & { vocab: number; captions: number }) => {
      const out = prepareOutputFile(flags.out, '-o');
      const controller = new AbortController();
      const data = trainingData({ ...flags, batch: 64 }, 32, 'transformer', controller.signal);
      const corpus: string[] = [];
      const progress = new Progress('reading captions', flags.captions, 'captions');
      for await (const b of data.batches(0)) {
        corpus.push(...b.captions);
        progress.update(Math.min(corpus.length, flags.captions));
        if (corpus.length >= flags.captions) break;
      }
      progress.stop();
      controller.abort();
      const tok = trainBpe(corpus.slice(0, flags.captions), { vocabSize: flags.vocab });
      saveHfJson(tok, out);
      const tokens = corpus.slice(0, 1000).reduce((n, c) => n + tok.encode(c).length, 0);
      process.stdout.write(`trained on ${Math.min(corpus.length, flags.captions)} captions: ${tok.vocabSize} ids, ${(tokens / Math.min(1000, corpus.length)).toFixed(1)} tokens per caption; wrote ${out}\n`);
    });

  program
    .command('convert')
    .description('rewrite a weights file (dVAE, transformer or CLIP) with its floating tensors in bf16 (half the size) or f32')
    .argument('<file>', 'the .safetensors weights file')
    .requiredOption('-o, --out <file>', 'where the converted file goes (the same path replaces it, atomically)')
    .addOption(new Option('--dtype <type>', 'bf16 or f32').choices(['bf16', 'f32']).default('bf16'))
    .action(async (file: string, flags: { out: string; dtype: 'bf16' | 'f32' }) => {
      const r = await convertWeights(file, flags.out, flags.dtype === 'bf16' ? 'BF16' : 'F32');
      const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;
      process.stdout.write(`${r.converted} of ${r.tensors} tensors in ${flags.dtype}: ${mb(r.bytesBefore)} → ${mb(r.bytesAfter)}; wrote ${resolve(flags.out)}\n`);
    });

  program
    .command('inspect')
    .description('what this install runs on: binary, backend, GPU and driver, versions, and why CUDA is not used')
    .option('--json', 'as JSON')
    .action((flags: { json?: boolean }) => {
      const report = inspect();
      if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else for (const [k, v] of Object.entries(report)) process.stdout.write(`${k.padEnd(16)} ${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
    });

  program
    .command('bench')
    .description('generation speed of a model on this machine: image tokens per second at several batch sizes')
    .option('--model <manifest>', 'model manifest', defaultModelPath())
    .option('--batches <list>', 'batch sizes', '1,4,16')
    .option('--samples <n>', 'samples per batch size', intOption(1), 16)
    .action(async (flags: { model: string; batches: string; samples: number }) => {
      const sizes = flags.batches.split(',').map((s) => intOption(1, 4096)(s.trim()));
      await using dalle = await Dalle.load(flags.model);
      process.stdout.write(`${dalle.info.name} on ${dalle.backend}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}); ${flags.samples} samples of ${dalle.info.grid ** 2} tokens each\n`);
      process.stdout.write('batch  seconds  image tokens/s  images/s\n');
      await dalle.generate('warm up', { n: 1 });
      for (const batch of sizes) {
        const r = await dalle.generate('a red circle', { n: flags.samples, batch, keep: 1 });
        const tokens = flags.samples * dalle.info.grid ** 2;
        process.stdout.write(`${String(batch).padStart(5)}  ${r.seconds.toFixed(2).padStart(7)}  ${(tokens / r.seconds).toFixed(0).padStart(14)}  ${(flags.samples / r.seconds).toFixed(2).padStart(8)}\n`);
      }
    });
}

/**
 * A weights file with every floating tensor in `dtype`, metadata kept. The loaders widen BF16 back to f32, so a
 * converted model runs unchanged, with each weight rounded to 8 significant bits. Training checkpoints are refused:
 * their optimizer state must stay f32 for a resume to be exact.
 */
export async function convertWeights(input: string, out: string, dtype: 'F32' | 'BF16'): Promise<{ tensors: number; converted: number; bytesBefore: number; bytesAfter: number }> {
  const { tensors, metadata } = readSafetensors(input);
  const bytesBefore = statSync(input).size;
  if (metadata.format === CHECKPOINT_FORMAT) {
    throw new DalleError('E_INVALID_ARGUMENT', `${input} is a training checkpoint, whose optimizer state stays f32 so a resume is exact: convert the weights file the run writes at the end`);
  }
  const converted = new Map([...tensors].map(([name, t]) => [name, castFloating(t, dtype)]));
  await writeSafetensors(prepareOutputFile(out, 'output'), converted, metadata);
  const changed = [...converted].filter(([name, t]) => t !== tensors.get(name)).length;
  return { tensors: tensors.size, converted: changed, bytesBefore, bytesAfter: statSync(out).size };
}

/** Everything a bug report needs to say about this install. */
export function inspect(): Record<string, unknown> {
  const pkg = JSON.parse(readFileSync(resolve(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const out: Record<string, unknown> = {
    version: pkg.version,
    node: `${process.version} (N-API ${process.versions.napi})`,
    platform: `${platform()}-${arch()}`,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  };
  let info: ReturnType<typeof buildInfo>;
  try {
    info = buildInfo();
  } catch (err) {
    out.binary = `not loaded: ${(err as Error).message}`;
    return out;
  }
  const loaded = loadedBinary();
  out.binary = loaded ? `${loaded.path} (${loaded.kind})` : 'unknown';
  const cudaPackage = candidates().find((c) => c.kind === 'cuda package')!;
  out['cuda package'] = existsSync(cudaPackage.path) ? cudaPackage.path : 'not installed (npm adds it beside dalle-engine on linux-x64 with glibc)';
  out.driver = probeNvidiaDriver().reason;
  out.simd = `${info.activeSimd} (built for ${info.simd})`;
  out.threads = info.threads;
  out.cuda = info.cudaCompiled ? `compiled in; ${info.cudaDevices} device(s)${info.cudaDeviceName ? `: ${info.cudaDeviceName}` : ''}${info.cublasLt ? ', cuBLASLt found' : ''}${info.cudaEmulated ? ' (emulated on the CPU, for tests)' : ''}` : 'not compiled into this binary';
  out.backend = 'cpu';
  out['why not cuda'] = !info.cudaCompiled
    ? `this binary was built without CUDA${existsSync(cudaPackage.path) ? ` and the CUDA package was skipped: ${cudaPackage.skip ?? 'it did not load'}` : ''}`
    : info.cudaDevices === 0
      ? `no usable GPU: ${info.cudaError || 'the CUDA driver reports no device'}`
      : 'the CUDA backend does not run the transformer and CLIP ops yet';
  try {
    const m = readManifest(defaultModelPath());
    out['default model'] = `${m.name}: ${defaultModelPath()}`;
  } catch (err) {
    out['default model'] = `missing: ${(err as Error).message}`;
  }
  return out;
}
