#!/usr/bin/env node
/**
 * `kvvm`: the one entry point (package.json "bin", the extension's bin/kvvm launchers). Only this file runs on
 * import; the command table and dispatcher are in main.ts, which tests and tools may import.
 */
import { describeError } from './errors.js';
import { main } from './main.js';

// process.exitCode, not process.exit(): let log transports flush.
import('./commands/context.js')
  .then(({ processHost }) => main(process.argv.slice(2), processHost()))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`kvvm: ${describeError(err)}\n`);
      process.exitCode = 1;
    },
  );
