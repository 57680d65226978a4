/** Command-line flags of the benchmark scripts: `--name value`. */

/** The number after `name`, or `dflt` when the flag is absent. */
export const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

/** The word after `name`, or undefined when the flag is absent. */
export const argStr = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
