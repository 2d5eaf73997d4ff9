import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  openSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { fsyncFd } from '../fsync.js';
import { tempNameFor } from './pemFiles.js';

/**
 * The one way a store writes a file: `writePrivateFile(dir, name, content, options)`.
 *
 *  - The temp file is created with O_CREAT|O_EXCL|O_NOFOLLOW and its final mode, so it is private from its first
 *    byte and a symlink or file planted at the temp name makes the open fail instead of being followed or reused.
 *  - Owner, times and ACLs are applied to the OPEN descriptor (fchown, futimes, setfacl on /dev/fd/N via
 *    `onHandle`), never by path, so swapping the temp name for a symlink cannot redirect them to another file.
 *  - Only then is the complete, fsynced file renamed to its final name (rename(2) replaces a symlink at the final
 *    name rather than following it), and the name is checked to hold the very inode written, so a swap between
 *    write and rename is detected instead of installing someone else's file.
 *  - The directory is fsynced after the rename (fsyncDir), so the new name survives a power cut.
 *
 * Synchronous calls, except fsync: every call here but fsync is a metadata operation (open, fchown, a write of a
 * few KiB into the page cache, futimes, fstat, rename, lstat, close) that takes microseconds on a local file
 * system, while the same call through libuv's thread pool costs a round trip of two thread wake-ups: measured on
 * the 2-core bench machine, ~35-85 us of CPU for an async stat against ~9 us for statSync, and a rotated
 * certificate made ~45 of them. fsync waits for the disk (milliseconds, far more on a busy one), so it alone stays
 * asynchronous: the event loop (the poll loop's other certificates, their vault requests, a stop signal) is held
 * only for one file's metadata calls at a time, well under a millisecond.
 *
 * `dir` must already be verified private (storeDirectory.ts): those checks are what keep other users from
 * writing in it at all; everything here is the second line, making each step safe even if the first failed.
 */

/** O_NOFOLLOW on the last component; with O_EXCL the kernel already refuses a symlink, this says so twice. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** An open file or directory: its descriptor (for fd-based calls and tools) and its path (for messages only). */
export interface OpenTarget {
  fd: number;
  path: string;
}

export interface PrivateWriteOptions {
  /** Permission bits from creation on; default 0600. */
  mode?: number;
  mtime?: Date;
  uid?: number;
  gid?: number;
  /** Runs on the complete, open temp file before it gets its final name (ACLs). */
  onHandle?: (target: OpenTarget) => Promise<void>;
  /** Runs each change to the directory's entries (pemIndex.ts keeps its listing in step); default: just runs it. */
  changes?: DirChanges;
  /**
   * false: the caller fsyncs the directory itself once after writing several files (one fsyncDir covers every
   * rename made before it starts), and must do so before it reports any of them written. Default true.
   */
  syncDir?: boolean;
}

/** A change to a directory's entries and what it does to them (pemIndex.ts DirIndexes.change for one directory). */
export type DirChanges = <T>(op: () => T, effect: DirEffect) => T;

export interface DirEffect {
  added?: readonly string[];
  removed?: readonly string[];
  /** A symbolic link this change put in place and its target (so the index need not read it back). */
  link?: { name: string; target: string };
}

const direct: DirChanges = (op) => op();

/** Returns the final name's lstat: the very file written (its inode checked), as it is once installed. */
export async function writePrivateFile(dir: string, finalName: string, content: string | Uint8Array, options: PrivateWriteOptions = {}): Promise<BigIntStats> {
  const changes = options.changes ?? direct;
  const tempName = tempNameFor(finalName);
  const tempPath = join(dir, tempName);
  const finalPath = join(dir, finalName);
  const fd = changes(() => openSync(tempPath, CREATE_FLAGS, options.mode ?? 0o600), { added: [tempName] });
  let renamed = false;
  let installed: BigIntStats;
  try {
    if (options.uid !== undefined || options.gid !== undefined) fchownSync(fd, options.uid ?? -1, options.gid ?? -1);
    writeFileSync(fd, content);
    if (options.mtime) futimesSync(fd, options.mtime, options.mtime);
    await fsyncFd(fd);
    if (options.onHandle) await options.onHandle({ fd, path: tempPath });
    const written = fstatSync(fd, { bigint: true });
    changes(() => renameSync(tempPath, finalPath), { added: [finalName], removed: [tempName] });
    renamed = true;
    const now = lstatSync(finalPath, { bigint: true });
    if (now.ino !== written.ino || now.dev !== written.dev) {
      // Someone replaced the temp name between our write and the rename: what got the final name is not ours.
      attempt(() => changes(() => unlinkSync(finalPath), { removed: [finalName] }));
      throw tamperedError(finalPath);
    }
    installed = now;
  } catch (err) {
    if (!renamed) attempt(() => changes(() => unlinkSync(tempPath), { removed: [tempName] }));
    throw err;
  } finally {
    closeSync(fd);
  }
  if (options.syncDir !== false) await fsyncDir(dir);
  return installed;
}

/**
 * Points `linkName` at `target` atomically: a new symlink under a fresh temp name (symlink(2) fails with EEXIST
 * rather than following anything already there) renamed over the old link (rename replaces, never follows).
 * The owner is set with lchown, which acts on the link itself.
 */
export async function replaceSymlink(dir: string, linkName: string, target: string, owner: { uid?: number; gid?: number }, changes: DirChanges = direct): Promise<void> {
  const tempPath = join(dir, tempNameFor(linkName));
  // One change of the directory: the temp link exists only within this synchronous block (a failure removes it).
  changes(
    () => {
      symlinkSync(target, tempPath);
      try {
        if (owner.uid !== undefined || owner.gid !== undefined) lchownSync(tempPath, owner.uid ?? -1, owner.gid ?? -1);
        renameSync(tempPath, join(dir, linkName));
      } catch (err) {
        attempt(() => unlinkSync(tempPath));
        throw err;
      }
    },
    { added: [linkName], link: { name: linkName, target } },
  );
  await fsyncDir(dir);
}

/** Opens a directory without following a symlink at its last component. */
export async function openDirectory(path: string): Promise<FileHandle> {
  return open(path, DIRECTORY_FLAGS);
}

interface DirSync {
  running: Promise<void>;
  /** The fsync that starts when `running` ends, shared by every caller that asked meanwhile. */
  queued: Promise<void> | undefined;
}
const dirSyncs = new Map<string, DirSync>();

/**
 * Makes renames and unlinks in `dir` durable (the directory entry lives in the directory's own blocks): resolves
 * after an fsync(2) of the directory that STARTED after this call, so it covers every change the caller made
 * before calling. Callers at the same moment share fsyncs: while one runs (it may have started before a caller's
 * rename), every caller that asks waits for the next one, which starts when it ends, so N certificates installed
 * at once into one directory cost about two directory fsyncs per disk flush instead of N.
 */
export function fsyncDir(dir: string): Promise<void> {
  const current = dirSyncs.get(dir);
  if (current === undefined) return beginDirSync(dir);
  current.queued ??= current.running.then(noop, noop).then(() => beginDirSync(dir));
  return current.queued;
}

function beginDirSync(dir: string): Promise<void> {
  const state: DirSync = { running: syncDirectoryOnce(dir), queued: undefined };
  dirSyncs.set(dir, state);
  const settled = (): void => {
    if (dirSyncs.get(dir) === state) dirSyncs.delete(dir);
  };
  state.running.then(settled, settled);
  return state.running;
}

async function syncDirectoryOnce(dir: string): Promise<void> {
  const fd = openSync(dir, DIRECTORY_FLAGS);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Cleanup after a failure: its own failure must not hide the first. */
function attempt(fn: () => void): void {
  try {
    fn();
  } catch {
    // the original error is the one reported
  }
}

function noop(): void {}

function tamperedError(path: string): KvvmError {
  return new KvvmError('store-tampered', `${path} was replaced by another file while kvvm wrote it; the store directory is being tampered with.`, {
    fix: 'Find out which process writes into the store directory; only root (or the kvvm service user) may write there.',
  });
}
