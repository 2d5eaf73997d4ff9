import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Temp-file naming and cleanup for the stores. Every file appears under its final name only by rename(2) of a
 * complete, fsynced temp file in the same directory (safeWrite.ts), so a crash leaves either the old state or the
 * new one plus a temp file that the next install/list removes.
 */

/** Temp files: `.kvvm-tmp.<random>.<final name>`; hidden, and never matching a version file or a link name. */
export const TEMP_PREFIX = '.kvvm-tmp.';

/** Temp files younger than this may belong to an install running right now (a second kvvm process during
 *  enable), so cleanup leaves them for a later pass. */
const TEMP_MAX_AGE_MS = 60_000;

export function tempNameFor(finalName: string): string {
  return `${TEMP_PREFIX}${randomBytes(6).toString('hex')}.${finalName}`;
}

/** The final name a temp file was written for, or undefined when `name` is not a kvvm temp file. */
export function finalNameOfTemp(name: string): string | undefined {
  const match = /^\.kvvm-tmp\.[0-9a-f]{12}\.(.+)$/.exec(name);
  return match?.[1];
}

/** Removes leftover temp files whose final name `belongs`, older than TEMP_MAX_AGE_MS at `now` (synchronous calls: safeWrite.ts says why). */
export function cleanTempFiles(
  dir: string,
  belongs: (finalName: string) => boolean,
  now: Date,
  names?: Iterable<string>,
  remove: (name: string) => void = (name) => unlinkSync(join(dir, name)),
): string[] {
  const removed: string[] = [];
  // `names`: the temp files of a listing the caller holds (pemIndex.ts), so a shared store directory is not read per call.
  for (const name of [...(names ?? readdirSync(dir))]) {
    const finalName = finalNameOfTemp(name);
    if (finalName === undefined || !belongs(finalName)) continue;
    try {
      if (now.getTime() - lstatSync(join(dir, name)).mtimeMs < TEMP_MAX_AGE_MS) continue;
      remove(name);
      removed.push(name);
    } catch {
      // gone meanwhile, or not removable now: the next pass tries again
    }
  }
  return removed;
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
