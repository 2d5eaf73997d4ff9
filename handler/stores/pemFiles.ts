import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, rename, symlink, unlink, lchown } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Crash-safe file primitives for the PEM store. Every file appears under its final name only by rename(2) of a
 * complete, fsynced temp file in the same directory, so a crash leaves either the old state or the new one plus
 * a temp file that the next install/list removes.
 */

/** Temp files: `.kvvm-tmp.<random>.<final name>`; hidden, and never matching a version file or a link name. */
export const TEMP_PREFIX = '.kvvm-tmp.';

/** Temp files younger than this may belong to an install running right now (a second kvvm process during
 *  enable), so cleanup leaves them for a later pass. */
export const TEMP_MAX_AGE_MS = 60_000;

export function tempNameFor(finalName: string): string {
  return `${TEMP_PREFIX}${randomBytes(6).toString('hex')}.${finalName}`;
}

/** The final name a temp file was written for, or undefined when `name` is not a kvvm temp file. */
export function finalNameOfTemp(name: string): string | undefined {
  const match = /^\.kvvm-tmp\.[0-9a-f]{12}\.(.+)$/.exec(name);
  return match?.[1];
}

export interface AtomicWriteOptions {
  /** Permission bits the file has from its creation (open with O_CREAT|O_EXCL and this mode). */
  mode: number;
  /** Set as the file's mtime: the PEM store keeps install order there. */
  mtime: Date;
  uid?: number;
  gid?: number;
  /** Runs on the complete temp file before it gets its final name (ACLs), so the final name never shows a
   *  file with the wrong permissions. */
  beforeRename?: (tempPath: string) => Promise<void>;
}

export async function writeFileAtomic(dir: string, finalName: string, content: string | Buffer, options: AtomicWriteOptions): Promise<void> {
  const tempPath = join(dir, tempNameFor(finalName));
  // 'wx' = O_CREAT|O_EXCL: never follows or reuses an existing path, and the mode applies from the first byte.
  const handle = await open(tempPath, 'wx', options.mode);
  try {
    try {
      if (options.uid !== undefined || options.gid !== undefined) {
        await handle.chown(options.uid ?? -1, options.gid ?? -1);
      }
      await handle.writeFile(content);
      await handle.utimes(options.mtime, options.mtime);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.beforeRename) await options.beforeRename(tempPath);
    await rename(tempPath, join(dir, finalName));
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/** Points `linkName` at `target` atomically: a new symlink under a temp name renamed over the old one. */
export async function replaceSymlink(dir: string, linkName: string, target: string, owner: { uid?: number; gid?: number }): Promise<void> {
  const tempPath = join(dir, tempNameFor(linkName));
  await symlink(target, tempPath);
  try {
    if (owner.uid !== undefined || owner.gid !== undefined) await lchown(tempPath, owner.uid ?? -1, owner.gid ?? -1);
    await rename(tempPath, join(dir, linkName));
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/** Makes renames and unlinks in `dir` durable (the directory entry lives in the directory's own blocks). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Removes leftover temp files whose final name `belongs`, older than TEMP_MAX_AGE_MS at `now`. */
export async function cleanTempFiles(dir: string, belongs: (finalName: string) => boolean, now: Date, names?: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  // `names`: a listing the caller just read, so a shared store directory is not read twice per call.
  for (const name of names ?? (await readdir(dir))) {
    const finalName = finalNameOfTemp(name);
    if (finalName === undefined || !belongs(finalName)) continue;
    const path = join(dir, name);
    const stat = await lstat(path).catch(() => undefined);
    if (!stat || now.getTime() - stat.mtimeMs < TEMP_MAX_AGE_MS) continue;
    await unlink(path).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
