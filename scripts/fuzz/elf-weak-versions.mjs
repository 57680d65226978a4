/**
 * Marks symbol-version requirements of an ELF64 shared object weak (VER_FLG_WEAK in .gnu.version_r), so the
 * dynamic loader accepts it on a system whose libc or libstdc++ lacks those versions. The symbols themselves must
 * then come from elsewhere: scripts/fuzz/jazzer-compat.cpp, preloaded.
 */
const SHT_GNU_VERNEED = 0x6ffffffe;
const VER_FLG_WEAK = 0x2;

function cString(bytes, offset) {
  let end = offset;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return bytes.subarray(offset, end).toString('latin1');
}

/** Returns a patched copy of `elf` and the version names it made weak; throws when the file is not ELF64 LE. */
export function weakenVersionRequirements(elf, versionNames) {
  const out = Buffer.from(elf);
  if (out.readUInt32BE(0) !== 0x7f454c46 || out[4] !== 2 || out[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const sectionTable = Number(out.readBigUInt64LE(0x28));
  const sectionSize = out.readUInt16LE(0x3a);
  const sectionCount = out.readUInt16LE(0x3c);
  const section = (i) => {
    const at = sectionTable + i * sectionSize;
    return { type: out.readUInt32LE(at + 4), offset: Number(out.readBigUInt64LE(at + 0x18)), link: out.readUInt32LE(at + 0x28), info: out.readUInt32LE(at + 0x2c) };
  };
  const weakened = [];
  for (let i = 0; i < sectionCount; i++) {
    const verneed = section(i);
    if (verneed.type !== SHT_GNU_VERNEED) continue;
    const strings = section(verneed.link).offset;
    let need = verneed.offset;
    for (let n = 0; n < verneed.info; n++) {
      const auxCount = out.readUInt16LE(need + 2);
      let aux = need + out.readUInt32LE(need + 8);
      for (let a = 0; a < auxCount; a++) {
        const name = cString(out, strings + out.readUInt32LE(aux + 8));
        if (versionNames.includes(name)) {
          out.writeUInt16LE(out.readUInt16LE(aux + 4) | VER_FLG_WEAK, aux + 4);
          weakened.push(name);
        }
        aux += out.readUInt32LE(aux + 12);
      }
      need += out.readUInt32LE(need + 12);
    }
  }
  return { elf: out, weakened };
}
