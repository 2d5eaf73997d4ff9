/**
 * The settings validators that valid settings need (schema.ts: the union's first-error gate and the generation
 * checks), kept as ajv standalone code in the package's compile cache folder (compileCache.ts). Loading ajv and
 * compiling those schemas costs enable and every service start about a Node start's worth of time (bench/,
 * figure 3); loading the generated code costs a few milliseconds, and ajv itself is then not loaded at all.
 *
 * The file name carries a hash of everything the code depends on (ajv's version, the options, the schema texts),
 * so a cached validator is only ever used for exactly the schemas it was generated from; anything that goes
 * wrong with the cache (unwritable folder, unreadable file) falls back to compiling. The folder is the package
 * folder's, writable by root only: the code in it runs as root.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import { COMPILE_CACHE_DIR } from '../compileCache.js';
import { packageRoot } from '../paths.js';

const require = createRequire(import.meta.url);

/** ajv, loaded only when a validator is not in the cache (or for the reporting validators, on invalid settings). */
export function ajvConstructor(): typeof Ajv {
  return (require('ajv') as { Ajv: typeof Ajv }).Ajv;
}

/**
 * The validator `name` for `options` and `sources` (the schema texts), from the cache when it is there, else made
 * by `compile` (given an ajv instance with those options that keeps its generated source) and cached.
 */
export function cachedValidator(name: string, options: Options, sources: readonly string[], compile: (ajv: Ajv) => ValidateFunction): ValidateFunction {
  const hash = createHash('sha256');
  for (const part of [ajvVersion(), JSON.stringify(options), name, ...sources]) hash.update(part).update('\0');
  const dir = join(packageRoot(), COMPILE_CACHE_DIR, 'ajv');
  const file = join(dir, `${name}-${hash.digest('hex').slice(0, 32)}.cjs`);
  if (existsSync(file)) {
    try {
      return require(file) as ValidateFunction;
    } catch {
      // damaged: compile below, and replace it
    }
  }
  const Ctor = ajvConstructor();
  const ajv = new Ctor({ ...options, code: { source: true } });
  const validate = compile(ajv);
  try {
    const { default: standaloneCode } = require('ajv/dist/standalone') as { default: (ajv: Ajv, validate: ValidateFunction) => string };
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, standaloneCode(ajv, validate), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // Not cached this time (read-only package folder, full disk): the compiled validator works all the same.
  }
  return validate;
}

function ajvVersion(): string {
  return (require('ajv/package.json') as { version: string }).version;
}
