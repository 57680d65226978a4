#!/usr/bin/env node
/**
 * The `dalle` command. Each command group lives in its own file and registers itself on the program; this file
 * only turns failures into a one-line message and an exit status (a DalleError's code says what went wrong, so
 * no stack trace is shown for it).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError } from 'commander';

import { DalleError } from '../errors.js';
import { packageRoot } from '../native/loader.js';
import { registerDataCommands } from './data.js';
import { registerGenerateCommand } from './generate.js';
import { registerToolCommands } from './tools.js';
import { registerTrainCommands } from './train.js';

export function buildProgram(): Command {
  const program = new Command('dalle')
    .description('DALL·E 1 for Node.js: data, training and sampling')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerGenerateCommand(program);
  registerTrainCommands(program);
  registerDataCommands(program);
  registerToolCommands(program);
  return program;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // a command may set a status of its own (130: Ctrl-C)
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander has printed the message or help already
    if (err instanceof DalleError) {
      process.stderr.write(`dalle: ${err.message} [${err.code}]\n`);
      return 1;
    }
    process.stderr.write(`dalle: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
    return 2;
  }
}

// Run only as the entry point (npx dalle, node dist/lib/cli/main.js), not when a test imports buildProgram.
const entry = process.argv[1];
if (entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))) {
  // A reader that stops early (`dalle inspect | head -3`) closes the pipe: stop quietly, as Unix tools do, instead of
  // dying on an unhandled EPIPE with a stack trace. Commands print their summary after their files are written.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
  process.exitCode = await main(process.argv.slice(2));
}
