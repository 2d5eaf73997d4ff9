import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, rename, symlink, unlink, lchown, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { tempNameFor } from './pemFiles.js';

/**
 * The one way a store writes a file: `writePrivateFile(dir, name, content, options)`.
 *
 *  - The temp file is created with O_CREAT|O_EXCL|O_NOFOLLOW and its final mode, so it is private from its first
 *    byte and a symlink or file planted at the temp name makes the open fail instead of being followed or reused.
 *  - Owner, times and ACLs are applied to the OPEN handle (fchown, futimes, setfacl on /dev/fd/N via
 *    `onHandle`), never by path, so swapping the temp name for a symlink cannot redirect them to another file.
 *  - Only then is the complete, fsynced file renamed to its final name (rename(2) replaces a symlink at the final
 *    name rather than following it), and the name is checked to hold the very inode written, so a swap between
 *    write and rename is detected instead of installing someone else's file.
 *
 * `dir` must already be verified private (storeDirectory.ts): those checks are what keep other users from
 * writing in it at all; everything here is the second line, making each step safe even if the first failed.
 */

/** O_NOFOLLOW on the last component; with O_EXCL the kernel already refuses a symlink, this says so twice. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** An open file or directory: its descriptor (for fd-based tools) and its path (for messages only). */
export interface OpenTarget {
  handle: FileHandle;
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
}

/** A change to a directory's entries and the names it adds and removes (pemIndex.ts DirIndexes.change for one directory). */
export type DirChanges = <T>(op: () => Promise<T>, effect: { added?: readonly string[]; removed?: readonly string[] }) => Promise<T>;

const direct: DirChanges = (op) => op();

/** Returns the final name's lstat: the very file written (its inode checked), as it is once installed. */
export async function writePrivateFile(dir: string, finalName: string, content: string | Uint8Array, options: PrivateWriteOptions = {}): Promise<BigIntStats> {
  const changes = options.changes ?? direct;
  const tempName = tempNameFor(finalName);
  const tempPath = join(dir, tempName);
  const finalPath = join(dir, finalName);
  const handle = await changes(() => open(tempPath, CREATE_FLAGS, options.mode ?? 0o600), { added: [tempName] });
  let renamed = false;
  let installed: BigIntStats;
  try {
    if (options.uid !== undefined || options.gid !== undefined) await handle.chown(options.uid ?? -1, options.gid ?? -1);
    await handle.writeFile(content);
    if (options.mtime) await handle.utimes(options.mtime, options.mtime);
    await handle.sync();
    if (options.onHandle) await options.onHandle({ handle, path: tempPath });
    const written = await handle.stat({ bigint: true });
    await changes(() => rename(tempPath, finalPath), { added: [finalName], removed: [tempName] });
    renamed = true;
    const now = await lstat(finalPath, { bigint: true });
    if (now.ino !== written.ino || now.dev !== written.dev) {
      // Someone replaced the temp name between our write and the rename: what got the final name is not ours.
      await changes(() => unlink(finalPath), { removed: [finalName] }).catch(() => undefined);
      throw tamperedError(finalPath);
    }
    installed = now;
  } catch (err) {
    if (!renamed) await changes(() => unlink(tempPath), { removed: [tempName] }).catch(() => undefined);
    throw err;
  } finally {
    await handle.close();
  }
  await fsyncDir(dir);
  return installed;
}

/**
 * Points `linkName` at `target` atomically: a new symlink under a fresh temp name (symlink(2) fails with EEXIST
 * rather than following anything already there) renamed over the old link (rename replaces, never follows).
 * The owner is set with lchown, which acts on the link itself.
 */
export async function replaceSymlink(dir: string, linkName: string, target: string, owner: { uid?: number; gid?: number }, changes: DirChanges = direct): Promise<void> {
  const tempName = tempNameFor(linkName);
  const tempPath = join(dir, tempName);
  await changes(() => symlink(target, tempPath), { added: [tempName] });
  try {
    if (owner.uid !== undefined || owner.gid !== undefined) await lchown(tempPath, owner.uid ?? -1, owner.gid ?? -1);
    await changes(() => rename(tempPath, join(dir, linkName)), { added: [linkName], removed: [tempName] });
  } catch (err) {
    await changes(() => unlink(tempPath), { removed: [tempName] }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/** Opens a directory without following a symlink at its last component. */
export async function openDirectory(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

/** Makes renames and unlinks in `dir` durable (the directory entry lives in the directory's own blocks). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await openDirectory(dir);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function tamperedError(path: string): KvvmError {
  return new KvvmError('store-tampered', `${path} was replaced by another file while kvvm wrote it; the store directory is being tampered with.`, {
    fix: 'Find out which process writes into the store directory; only root (or the kvvm service user) may write there.',
  });
}
