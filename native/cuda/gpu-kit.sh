#!/usr/bin/env bash
# Packs what the CUDA tests need on the GPU machine, which has no Node, npm or network, into the
# ignored folder .gpukit/: the CUDA dalle.node built here (build-cuda) and ava + tsx with their
# dependencies and lib's run-time dependencies (the whole node_modules would not fit in a run's 64 MiB). Node itself comes from
# ../shared/gpu/prepare.sh (.devkit). Run from anywhere in the project; see native/cuda/README.md.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
cd "$root"
binary="${1:-build-cuda/Release/dalle.node}"
[ -f "$binary" ] || { echo "no $binary: build it first (npx cmake-js compile --out build-cuda)" >&2; exit 1; }
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpukit/' "$exclude" 2>/dev/null || echo '/.gpukit/' >> "$exclude"
rm -rf .gpukit && mkdir -p .gpukit
cp "$binary" .gpukit/dalle.node
# The dependency closure of ava and tsx, resolved the way Node resolves it.
node -e '
  const fs = require("fs"), path = require("path");
  const seen = new Set();
  function walk(name, from) {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const p = path.join(dir, "node_modules", name);
      if (fs.existsSync(path.join(p, "package.json"))) {
        if (seen.has(p)) return;
        seen.add(p);
        const pj = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8"));
        for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) walk(d, p);
        return;
      }
      if (path.dirname(dir) === dir) return;
    }
  }
  walk("ava", process.cwd());
  walk("tsx", process.cwd());
  // What lib/ imports at run time (the build tools stay behind).
  const own = JSON.parse(fs.readFileSync("package.json", "utf8"));
  for (const d of Object.keys(own.dependencies)) if (d !== "cmake-js" && d !== "node-addon-api") walk(d, process.cwd());
  for (const p of seen) console.log(path.relative(process.cwd(), p));
' > .gpukit/modules.txt
tar -cJf .gpukit/node_modules.tar.xz -T .gpukit/modules.txt
du -sh .gpukit/* .devkit 2>/dev/null || true
