#!/usr/bin/env bash
# Runs the test suite against the ASan+UBSan build (npm run build:native:asan first).
# Node itself is not instrumented, so the ASan runtime must be preloaded; leak checking is off
# because V8 keeps memory until exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/build-asan/Debug/dalle.node"
[ -f "$bin" ] || { echo "no $bin: run npm run build:native:asan" >&2; exit 1; }
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
DALLE_BINARY="$bin" npx ava "$@"
