#!/usr/bin/env node
/**
 * `kvvm`: the one entry point (package.json "bin", the extension's bin/kvvm launchers). Only this file runs on
 * import; the command table and dispatcher are in main.ts, which tests and tools may import. The compile cache is
 * turned on before anything else is loaded, so every module after it is served from the cache (compileCache.ts),
 * except in a long-running service worker.
 */
import { enableCompileCache } from './compileCache.js';

enableCompileCache(process.argv.slice(2));
// process.exitCode, not process.exit(): let log transports flush.
Promise.all([import('./main.js'), import('./commands/context.js'), import('./errors.js')]).then(
  ([{ main }, { processHost }, { describeError }]) =>
    main(process.argv.slice(2), processHost()).then(
      (code) => {
        process.exitCode = code;
      },
      (err: unknown) => {
        process.stderr.write(`kvvm: ${describeError(err)}\n`);
        process.exitCode = 1;
      },
    ),
  (err: unknown) => {
    process.stderr.write(`kvvm: cannot load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
