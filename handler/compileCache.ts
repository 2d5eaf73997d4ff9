/**
 * Node's on-disk compile cache (module.enableCompileCache, Node >= 22.1: the runtime the packages ship) for every
 * kvvm process: enable, the service and the hooks' short-lived commands each load a few hundred modules, and
 * with the cache V8 reuses their compiled code instead of compiling them again at every start (bench/, figure 3).
 * A no-op on a Node without it (20.x) and when NODE_DISABLE_COMPILE_CACHE is set.
 *
 * The cache lives in the package folder, which only root (SYSTEM on Windows) can write, never in the shared
 * temporary folder Node would default to: code cached there by another user would run as root. Entries are keyed
 * by Node's version and each file's content, so a stale entry is never used; a cache that cannot be written is
 * skipped (enableCompileCache reports that instead of throwing).
 */
import module from 'node:module';
import { join } from 'node:path';
import { restsBetweenCycles, type EnvLike } from './overrides.js';
import { packageRoot } from './paths.js';

const COMPILE_CACHE_DIR = '.node-compile-cache';

/**
 * Every command but a long-running worker (`kvvm service`, args[0]): a module served from the cache comes with
 * every function the process that wrote the entry had compiled (enable's, for the modules both load), and Node
 * keeps the entries in memory until exit to write them back. A worker that sits idle for hours (Windows) compiles
 * what it runs instead: its idle memory 3.5 MiB less (bench/, figure 4). A worker that rests between cycles
 * (POSIX, restartLoop.ts) starts once per cycle and holds no memory between them, so it uses the cache.
 */
export function enableCompileCache(args: readonly string[], env: EnvLike = process.env): void {
  if (args[0] === 'service' && !restsBetweenCycles(env)) return;
  const enable = (module as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  if (typeof enable !== 'function') return;
  try {
    enable(join(packageRoot(), COMPILE_CACHE_DIR));
  } catch {
    // Never fail a command over a cache: it only saves start-up time.
  }
}
