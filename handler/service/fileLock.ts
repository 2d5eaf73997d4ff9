/**
 * Exclusive advisory locks that the kernel releases when their holder dies, for "one command at a time" and
 * "one service per extension".
 *
 * Why flock(2) through util-linux's `flock` and not a lock file written with O_EXCL: an O_EXCL file outlives a
 * SIGKILLed holder, so every taker would have to decide whether a stale file is really stale (pid + start
 * marker), and two takers deciding at once can both remove it and both win. A flock is owned by the open file
 * description; the kernel drops it when the last descriptor closes, including on SIGKILL, so there is nothing to
 * judge and no window. Node has no flock binding and the npm ones are native addons (fs-ext, built with nan), so
 * we open the file ourselves and let `flock -x 3` lock OUR descriptor: the child gets a duplicate of it as fd 3,
 * locks the shared open file description, and exits. The lock then belongs to this process's descriptor alone,
 * and lasts until we close it or die. util-linux is an essential package on every distribution the Linux agent
 * supports; without it the command fails with a fix instead of running unlocked.
 *
 * Windows has no flock and needs none here: the Service Control Manager already allows one "kvvm" service.
 */
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { KvvmError } from '../errors.js';

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

export interface AcquireLockOptions {
  /** How long to wait for another holder; 0 tries once. */
  waitMs: number;
  /** What the lock protects, for the error message. */
  purpose: string;
  /** The util-linux binary (tests may point elsewhere). */
  flockBinary?: string;
}

/** Exit status flock gives on a conflict with -E (EX_TEMPFAIL), so it cannot be confused with other failures. */
const CONFLICT = 75;

/** Takes the lock, or resolves undefined when another process held it for the whole wait. */
export async function tryAcquireLock(path: string, options: AcquireLockOptions): Promise<HeldLock | undefined> {
  // O_NOFOLLOW: a symlink planted at the lock's name must not make us create or lock some other file.
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  let locked = false;
  try {
    const status = await runFlock(handle, options);
    if (status === CONFLICT) return undefined;
    if (status !== 0) {
      throw new KvvmError('lock-failed', `Cannot lock ${path} (${options.purpose}): flock exited with ${status}.`, {
        fix: 'Check that the extension folder is on a local file system that supports flock.',
        code: -1,
      });
    }
    locked = true;
    return {
      path,
      release: async () => {
        // Closing our only descriptor of the open file description releases the lock.
        await handle.close().catch(() => undefined);
      },
    };
  } finally {
    if (!locked) await handle.close().catch(() => undefined);
  }
}

/** Takes the lock or throws a KvvmError saying who to wait for. */
async function acquireLock(path: string, options: AcquireLockOptions): Promise<HeldLock> {
  const lock = await tryAcquireLock(path, options);
  if (lock) return lock;
  throw new KvvmError('lock-busy', `Another kvvm process held ${path} (${options.purpose}) for ${Math.round(options.waitMs / 1000)} s.`, {
    fix: 'Wait for the other extension command to finish, then run this one again.',
    code: -1,
  });
}

/** Runs fn with the lock held; the lock is released however fn ends. */
export async function withLock<T>(path: string, options: AcquireLockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

function runFlock(handle: FileHandle, options: AcquireLockOptions): Promise<number> {
  const args = ['-x', '-E', String(CONFLICT)];
  if (options.waitMs <= 0) args.push('-n');
  else args.push('-w', (options.waitMs / 1000).toFixed(3));
  args.push('3');
  return new Promise((resolve, reject) => {
    const child = spawn(options.flockBinary ?? flockBinary(), args, { stdio: ['ignore', 'ignore', 'ignore', handle.fd] });
    child.once('error', (err) =>
      reject(
        new KvvmError('lock-unavailable', `Cannot run flock to lock ${options.purpose}: ${err.message}.`, {
          fix: 'Install util-linux (it provides flock), then run the command again.',
          code: -1,
          cause: err,
        }),
      ),
    );
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** util-linux installs flock in /usr/bin (merged /usr) or /bin; PATH may be minimal under the agent. */
function flockBinary(): string {
  return ['/usr/bin/flock', '/bin/flock'].find((p) => existsSync(p)) ?? 'flock';
}
