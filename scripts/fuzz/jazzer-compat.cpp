// Symbols the Jazzer.js 4 prebuilt fuzzer addon takes from newer C libraries than Debian 12's (glibc 2.36,
// libstdc++ of GCC 12). scripts/fuzz/jazzer-compat.mjs marks those versions weak in a copy of the addon, and the
// fuzz runner preloads this library so the unversioned definitions below satisfy the references.
#include <cstdlib>
#include <iostream>  // GCC 12: a static std::ios_base::Init here constructs std::cout before the addon uses it

extern "C" long __isoc23_strtol(const char* text, char** end, int base) { return std::strtol(text, end, base); }
extern "C" unsigned long __isoc23_strtoul(const char* text, char** end, int base) { return std::strtoul(text, end, base); }

namespace std {
// GCC 13 references this to pull in a libstdc++ that initialises the standard streams itself; GCC 12's libstdc++
// initialises them through the std::ios_base::Init object above, so there is nothing left to do.
void ios_base_library_init() {}
}  // namespace std
