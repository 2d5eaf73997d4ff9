import { closeSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncFd } from '../fsync.js';

/**
 * Write a file so that a concurrent reader sees either the old content or the new content, never a prefix.
 *
 * The guest agent parses <seq>.status while our service rewrites it, and gives up after 5 failed parses, so a
 * torn file is a real failure mode. The temp file lives in the SAME folder (rename is only atomic within one
 * file system) and its name ends in `.tmp`, so it never matches the agent's globs (`*.status`, `*.settings`,
 * `<digits>.json`). The data is fsynced before the rename so a power loss cannot leave an empty file behind
 * the new name. `mode` applies from the first byte (open with mode), not via a chmod afterwards.
 *
 * Synchronous calls except the fsync, as in stores/safeWrite.ts: open, a write of a few KiB, close and rename take
 * microseconds, and each through fs/promises is a thread-pool round trip (enable writes four of these files: mrseq,
 * status, the supervisor's pid record, the event; 1.0-2.1 ms each that way in one traced run, bench/ figure 3).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const { fd, temp } = openTemp(path, options.mode ?? 0o644);
  let renamed = false;
  try {
    try {
      writeFileSync(fd, data);
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    }
  }
}

let tempCounter = 0;

/**
 * A temporary file of its own beside `path`, created with O_EXCL. The process id and a counter tell writers apart (a
 * name taken by another thread of this process, or left behind by a crashed process that had the same id, fails with
 * EEXIST and the next number is tried), so no random bytes are needed, nor node:crypto to make them (lazyCrypto.ts).
 */
function openTemp(path: string, mode: number): { fd: number; temp: string } {
  for (let attempt = 0; ; attempt++) {
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${(tempCounter++).toString(36)}.tmp`);
    try {
      return { fd: openSync(temp, 'wx', mode), temp };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 1000) throw err;
    }
  }
}

/** True for the errno codes that mean "the path is not there" (as opposed to "cannot read it"). */
export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
