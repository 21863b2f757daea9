#!/usr/bin/env node
import { runCli } from '../surfaces/cli/cli-program.js';
import { createCliRuntime } from './cli-runtime.js';

/** The `brain` executable: runs one command line, sets the exit code, prints no stack traces. */
const code = await runCli(process.argv.slice(2), createCliRuntime(), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});
process.exitCode = code;
