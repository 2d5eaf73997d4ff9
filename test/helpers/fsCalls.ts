/**
 * Counts the file-system calls code makes while a function runs, by patching the very `node:fs` and
 * `node:fs/promises` functions (and FileHandle methods) it imports, synced into the ES module bindings
 * (syncBuiltinESMExports). Counted, not timed, so a test built on it fails on a regression and never on a busy
 * machine. Calls are split by how they run: synchronously on the event loop, or through libuv's thread pool (the
 * callback API, node:fs/promises and FileHandle), where each costs a round trip of two thread wake-ups; and
 * fsyncs by what they flush: a regular file, or a directory (opened with O_DIRECTORY).
 */
import { constants } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';

type AnyFn = (...args: unknown[]) => unknown;
type Module = Record<string, unknown>;

const require = createRequire(import.meta.url);
const fs = require('node:fs') as Module;
const fsp = require('node:fs/promises') as Module;

/** File-system calls a store can make (every other export is left alone). */
const NAMES = [
  'access',
  'chmod',
  'chown',
  'close',
  'fchmod',
  'fchown',
  'fstat',
  'fsync',
  'fdatasync',
  'futimes',
  'lchown',
  'link',
  'lstat',
  'mkdir',
  'open',
  'read',
  'readdir',
  'readFile',
  'readlink',
  'realpath',
  'rename',
  'rm',
  'rmdir',
  'stat',
  'symlink',
  'unlink',
  'utimes',
  'write',
  'writeFile',
] as const;
const HANDLE_METHODS = ['chmod', 'chown', 'datasync', 'read', 'readFile', 'stat', 'sync', 'utimes', 'write', 'writeFile'] as const;

export interface FsCalls {
  /** Every call, by name: `lstatSync`, `fsync` (callback), `promises.lstat`, `handle.sync`. */
  byName: Record<string, number>;
  /** Calls made synchronously on the calling thread. */
  sync: number;
  /** Calls through libuv's thread pool (callback API, node:fs/promises, FileHandle methods). */
  pooled: number;
  /** fsync/fdatasync of regular files, and of directories. */
  fileSyncs: number;
  dirSyncs: number;
  readdirs: number;
  /** Entries the readdirs returned. */
  readdirEntries: number;
}

export function total(calls: FsCalls): number {
  return calls.sync + calls.pooled;
}

const isDirectoryOpen = (flags: unknown): boolean => typeof flags === 'number' && (flags & constants.O_DIRECTORY) !== 0;

/** Runs `fn` with every file-system call counted (only one counting at a time). */
export async function countFsCalls(fn: () => Promise<void>): Promise<FsCalls> {
  const calls: FsCalls = { byName: {}, sync: 0, pooled: 0, fileSyncs: 0, dirSyncs: 0, readdirs: 0, readdirEntries: 0 };
  const directoryFds = new Set<number>();
  const note = (name: string, pooled: boolean): void => {
    calls.byName[name] = (calls.byName[name] ?? 0) + 1;
    if (pooled) calls.pooled++;
    else calls.sync++;
  };
  const noteSync = (fd: unknown): void => {
    if (directoryFds.has(fd as number)) calls.dirSyncs++;
    else calls.fileSyncs++;
  };
  const noteReaddir = (names: unknown): void => {
    calls.readdirs++;
    calls.readdirEntries += Array.isArray(names) ? names.length : 0;
  };
  const restore: Array<() => void> = [];
  const patch = (target: Module, key: string, wrap: (original: AnyFn) => AnyFn): void => {
    const original = target[key];
    if (typeof original !== 'function') return;
    target[key] = wrap(original as AnyFn);
    restore.push(() => {
      target[key] = original;
    });
  };

  const handleProto = await fileHandlePrototype();
  for (const name of NAMES) {
    patch(
      fs,
      `${name}Sync`,
      (original) =>
        function (this: unknown, ...args: unknown[]) {
          note(`${name}Sync`, false);
          if (name === 'fsync' || name === 'fdatasync') noteSync(args[0]);
          const result = original.apply(this, args);
          if (name === 'open' && isDirectoryOpen(args[1])) directoryFds.add(result as number);
          if (name === 'close') directoryFds.delete(args[0] as number);
          if (name === 'readdir') noteReaddir(result);
          return result;
        },
    );
    patch(
      fs,
      name,
      (original) =>
        function (this: unknown, ...args: unknown[]) {
          note(name, true);
          if (name === 'fsync' || name === 'fdatasync') noteSync(args[0]);
          const last = args.length - 1;
          const callback = args[last];
          if (typeof callback === 'function' && (name === 'open' || name === 'readdir')) {
            args[last] = (err: unknown, result: unknown) => {
              if (!err && name === 'open' && isDirectoryOpen(args[1])) directoryFds.add(result as number);
              if (!err && name === 'readdir') noteReaddir(result);
              (callback as AnyFn)(err, result);
            };
          }
          return original.apply(this, args);
        },
    );
    patch(fsp, name, (original) => async (...args: unknown[]) => {
      note(`promises.${name}`, true);
      const result = await original(...args);
      if (name === 'open') {
        // A FileHandle's close is its own property, not its prototype's.
        const handle = result as { fd: number; close: AnyFn };
        const fd = handle.fd;
        const close = handle.close;
        if (isDirectoryOpen(args[1])) directoryFds.add(fd);
        handle.close = function (this: unknown, ...closeArgs: unknown[]) {
          note('handle.close', true);
          directoryFds.delete(fd);
          return close.apply(this, closeArgs);
        };
      }
      if (name === 'readdir') noteReaddir(result);
      return result;
    });
  }
  for (const method of HANDLE_METHODS) {
    patch(
      handleProto,
      method,
      (original) =>
        function (this: { fd: number }, ...args: unknown[]) {
          note(`handle.${method}`, true);
          if (method === 'sync' || method === 'datasync') noteSync(this.fd);
          return original.apply(this, args);
        },
    );
  }
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    for (const undo of restore) undo();
    syncBuiltinESMExports();
  }
  return calls;
}

/** FileHandle.prototype (not exported by Node): taken from a handle on the temp directory. */
async function fileHandlePrototype(): Promise<Module> {
  const open = fsp['open'] as (path: string, flags: number) => Promise<{ close(): Promise<void> }>;
  const handle = await open(tmpdir(), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return Object.getPrototypeOf(handle) as Module;
  } finally {
    await handle.close();
  }
}
