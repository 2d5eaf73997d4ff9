import { constants, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { mkdir, open, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KvvmError } from '../errors.js';
import { isSharedDirectory } from '../settings/sharedDirectories.js';
import { openDirectory } from './safeWrite.js';

/**
 * The store directory must be one that no other local user can steer (OpenSSH's StrictModes, applied to a
 * directory of private keys): the directory and every directory on the way to it, symlinks resolved, are owned
 * by root or the service user and not writable by group or others. Then only root or the service user can
 * rename, replace or plant anything on that path, so every later path-based step (rename, unlink, setfacl by
 * path) acts on what was checked. One exception, as in the kernel's protected_symlinks: a world-writable parent
 * with the sticky bit (/tmp) is allowed ON THE WAY, because there only the owner of an entry can rename or
 * remove it, and that entry (directory or symlink) must itself be owned by root or the service user.
 *
 * kvvm changes the mode, owner or ACL only of a directory it manages: one it created (it leaves a marker file
 * STORE_MARKER inside) or the documented default store. Any other existing directory is used as it is, or
 * refused with the exact fix, so pointing the store at an existing directory never takes it over.
 */

/** Marks a directory kvvm created (or an operator handed over): kvvm then keeps it 0700/0710 and sets its ACL. */
export const STORE_MARKER = '.kvvm-store';
const MAX_SYMLINKS = 40;

export interface StoreDirectoryPolicy {
  /** Owners besides root allowed on the path: the service's user and the configured file owner. */
  trustedUids: ReadonlySet<number>;
  /** The documented default store, which kvvm manages even when it did not create it. */
  defaultStore: string;
}

export interface CheckedDirectory {
  /** The directory with symlinks resolved. */
  realPath: string;
  /** kvvm created it or was handed it (marker), or it is the default store: its mode and ACL are kvvm's. */
  managed: boolean;
  stats: Stats;
}

/**
 * Checks `dir` (absolute) and the path to it. Returns undefined when it does not exist yet (nothing was created),
 * the checked directory otherwise; throws a KvvmError naming the offending path and the fix.
 */
export async function checkStoreDirectory(dir: string, policy: StoreDirectoryPolicy): Promise<CheckedDirectory | undefined> {
  if (isSharedDirectory(dir)) throw sharedDirectory(dir, dir);
  const walked = walk(dir, policy);
  if (walked.missing.length > 0) return undefined;
  return checkedAt(dir, walked.path, walked.stats, policy);
}

/** Like checkStoreDirectory, creating what is missing: parents 0755, the store 0700 with the marker inside. */
export async function ensureStoreDirectory(dir: string, policy: StoreDirectoryPolicy, owner: { uid?: number; gid?: number }): Promise<CheckedDirectory> {
  if (isSharedDirectory(dir)) throw sharedDirectory(dir, dir); // before anything is created
  let walked = walk(dir, policy);
  while (walked.missing.length > 0) {
    const [name, ...rest] = walked.missing as [string, ...string[]];
    if (name === '..')
      throw unsafe(
        dir,
        join(walked.path, name),
        'leads through a directory that does not exist yet ("..")',
        'Write the store path without symbolic links into missing directories.',
      );
    const isStore = rest.length === 0;
    const path = join(walked.path, name);
    let created = true;
    try {
      await mkdir(path, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      created = false; // someone made it meanwhile: the walk below checks it like any existing directory
    }
    if (created) {
      // umask may have narrowed the mode; the parents are made traversable for "acls" readers (0755, owned by
      // the service user, so still not writable by anyone else).
      const handle = await openDirectory(path);
      try {
        await handle.chmod(isStore ? 0o700 : 0o755);
        if (isStore) {
          if (owner.uid !== undefined || owner.gid !== undefined) await handle.chown(owner.uid ?? -1, owner.gid ?? -1);
          await writeMarker(path);
        }
      } finally {
        await handle.close();
      }
    }
    walked = walk(dir, policy);
  }
  const checked = checkedAt(dir, walked.path, walked.stats, policy);
  if (!checked.managed && (await adoptable(walked.path, walked.stats))) {
    // A crash between mkdir and the marker leaves exactly this: an empty 0700 directory of ours.
    await writeMarker(walked.path);
    return { ...checked, managed: true };
  }
  // A concurrent caller (another certificate's first install) may have written the marker since the check.
  if (!checked.managed && isManaged(walked.path)) return { ...checked, managed: true };
  return checked;
}

function checkedAt(dir: string, realPath: string, stats: Stats, policy: StoreDirectoryPolicy): CheckedDirectory {
  if (isSharedDirectory(realPath) || isSharedDirectory(dir)) throw sharedDirectory(dir, realPath);
  const managed = realPath === policy.defaultStore || dir === policy.defaultStore || isManaged(realPath);
  return { realPath, managed, stats };
}

interface Walked {
  /** The last existing directory reached (symlinks resolved). */
  path: string;
  stats: Stats;
  /** Components still to create below `path`. */
  missing: string[];
}

/**
 * Resolves `dir` one component at a time from "/", checking each directory before looking inside it, and each
 * symlink before following it. Never creates anything. Synchronous: a handful of lstat calls on local metadata
 * (a check of a 4-level path: 22-27 us of CPU this way, 400-417 us through fs/promises, Node 20, 2026-12-03).
 */
function walk(dir: string, policy: StoreDirectoryPolicy): Walked {
  let path = '/';
  let stats = lstatSync('/');
  checkDirectory(dir, '/', stats, policy, false);
  const queue = dir.split('/').filter((s) => s !== '' && s !== '.');
  let links = 0;
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (name === '..') {
      // Every directory above `path` was checked on the way down.
      path = dirname(path);
      stats = lstatSync(path);
      continue;
    }
    const next = join(path, name);
    let info: Stats;
    try {
      info = lstatSync(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path, stats, missing: [name, ...queue] };
      throw err;
    }
    const parentShared = (stats.mode & 0o022) !== 0;
    if (info.isSymbolicLink()) {
      if (parentShared && !trusted(info.uid, policy)) {
        throw unsafe(
          dir,
          next,
          `is a symbolic link owned by uid ${info.uid} in ${path}, which others can write to`,
          `Remove ${next}, or use a path that does not pass through ${path}.`,
        );
      }
      if (++links > MAX_SYMLINKS) throw unsafe(dir, next, 'is part of a symbolic link loop', 'Fix the symbolic links on the way to the store directory.');
      const target = readlinkSync(next);
      queue.unshift(...target.split('/').filter((s) => s !== '' && s !== '.'));
      if (target.startsWith('/')) {
        path = '/';
        stats = lstatSync('/');
      }
      continue;
    }
    if (!info.isDirectory()) {
      throw new KvvmError('store-dir-not-directory', `The store directory ${dir} cannot be used: ${next} is not a directory.`, {
        fix: `Move ${next} away, or set certificateStoreLocation to another directory.`,
      });
    }
    checkDirectory(dir, next, info, policy, queue.length === 0);
    path = next;
    stats = info;
  }
  return { path, stats, missing: [] };
}

function checkDirectory(dir: string, path: string, info: Stats, policy: StoreDirectoryPolicy, isStore: boolean): void {
  if (!trusted(info.uid, policy)) {
    throw unsafe(
      dir,
      path,
      `is owned by uid ${info.uid}, not by root or the kvvm service user, so that user could replace what is in it`,
      `Use a directory owned by root on a path owned by root (e.g. the default /var/lib/waagent/Microsoft.Azure.KeyVault.Store), or run "chown root ${path}" if that is right for it.`,
    );
  }
  const othersWrite = (info.mode & 0o022) !== 0;
  const sticky = (info.mode & 0o1000) !== 0;
  if (othersWrite && (isStore || !sticky)) {
    const who = (info.mode & 0o002) !== 0 ? 'every user' : 'its group';
    throw unsafe(
      dir,
      path,
      `is writable by ${who} (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')}), who could plant symbolic links or swap files in it`,
      isStore
        ? `Use a directory only root can write to; kvvm does not change the permissions of a directory it did not create.`
        : `Run "chmod go-w ${path}" if that is right for it, or choose a store path whose parents only root can write to.`,
    );
  }
}

function trusted(uid: number, policy: StoreDirectoryPolicy): boolean {
  return uid === 0 || policy.trustedUids.has(uid);
}

async function adoptable(path: string, stats: Stats): Promise<boolean> {
  if ((stats.mode & 0o777) !== 0o700 || stats.uid !== (process.geteuid?.() ?? 0)) return false;
  return (await readDirectoryNames(path, stats.size)).length === 0;
}

/**
 * A directory whose size (st_size: the blocks of its entries on ext4, their bytes on tmpfs, xfs and btrfs) is at most
 * this is read with one synchronous readdir(2): about 500 entries with kvvm's file names on ext4, read in ~0.4 ms,
 * where a read through libuv's thread pool costs ~60 us of CPU even for an empty directory (Node 22: 59.5 us against
 * 7.6 us synchronously on tmpfs; 425 us for the 495 entries of a 64 KiB ext4 directory; 2,000-20,000 reads each).
 * Larger ones go through the pool, so that reading 20,000 entries (~30 ms) does not hold up the event loop.
 */
const SYNC_READDIR_MAX_BYTES = 64 * 1024;

/** The names in directory `path`, whose st_size is `size`: synchronously when it is small (SYNC_READDIR_MAX_BYTES). */
export async function readDirectoryNames(path: string, size: number | bigint): Promise<string[]> {
  return size <= SYNC_READDIR_MAX_BYTES ? readdirSync(path) : readdir(path);
}

async function writeMarker(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(join(dir, STORE_MARKER), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    // Concurrent first installs (one per certificate) into a new store all create it: the first marker counts.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && isManaged(dir)) return;
    throw err;
  }
  try {
    await handle.writeFile('kvvm created this directory and manages its mode and ACL (Key Vault certificates).\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Whether kvvm manages `dir` (its marker is a regular file in it). */
function isManaged(dir: string): boolean {
  try {
    return lstatSync(join(dir, STORE_MARKER), { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}

function unsafe(dir: string, path: string, why: string, fix: string): KvvmError {
  return new KvvmError('store-dir-unsafe', `The store directory ${dir} is not safe for private keys: ${path} ${why}.`, { fix });
}

function sharedDirectory(dir: string, realPath: string): KvvmError {
  return new KvvmError(
    'store-dir-shared',
    `The store directory ${dir}${realPath === dir ? '' : ` (${realPath})`} is a directory the whole system shares; kvvm keeps its store private and would lock others out of it.`,
    {
      fix: 'Set certificateStoreLocation to a dedicated directory, e.g. /var/lib/waagent/Microsoft.Azure.KeyVault.Store (the default) or /etc/ssl/private/<app>.',
    },
  );
}
