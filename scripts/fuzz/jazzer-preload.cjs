/**
 * Loaded with `node --require` into every fuzzing process when the stock Jazzer.js addon cannot load on this
 * system: sends its dlopen to the copy that scripts/fuzz/jazzer-setup.mjs made loadable.
 */
'use strict';
const stockAddon = process.env.DALLE_FUZZ_STOCK_ADDON;
const loadableAddon = process.env.DALLE_FUZZ_LOADABLE_ADDON;
if (stockAddon && loadableAddon) {
  const dlopen = process.dlopen;
  process.dlopen = function redirectFuzzerAddon(module, filename, ...flags) {
    return dlopen.call(this, module, filename === stockAddon ? loadableAddon : filename, ...flags);
  };
}
