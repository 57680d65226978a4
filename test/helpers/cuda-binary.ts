/**
 * Imported first by the CUDA test files. Unless DALLE_BINARY already names a binary (on a GPU machine, the real CUDA
 * build), they run on the emulated CUDA device: the DALLE_CUDA=EMULATE build in build-emulated/
 * (`npm run build:native:emulated`), where the CUDA kernels run on the CPU. CI sets DALLE_REQUIRE_CUDA_DEVICE=1 so that
 * a missing device fails these tests instead of skipping them.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const emulated = fileURLToPath(new URL('../../build-emulated/Release/dalle.node', import.meta.url));
if (!process.env['DALLE_BINARY'] && existsSync(emulated)) process.env['DALLE_BINARY'] = emulated;

/** Set in CI: the CUDA tests must run (on the emulator there), never skip. */
export const cudaDeviceRequired = process.env['DALLE_REQUIRE_CUDA_DEVICE'] === '1';
