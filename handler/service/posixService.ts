/**
 * The certificate service on Linux and other POSIX systems, as enable/disable/uninstall see it: a supervisor
 * (restartLoop.ts, recorded in kvvm-supervisor.pid) that holds the service lock and restarts the worker, which
 * records itself in kvvm-service.pid. "No service left" is decided by the kernel, not by pid files: the service
 * lock is free and the worker's record names no live process.
 */
import { readdir, readlink } from 'node:fs/promises';
import { KvvmError } from '../errors.js';
import { tryAcquireLock, withLock } from './fileLock.js';
import { removePidFile, type ProcessInspector } from './pidfile.js';
import { restartLoopArgs, SUPERVISOR_READY_FD_ENV, type RestartPolicy } from './restartLoop.js';
import { posixSupervisor } from './posixSupervisor.js';
import type { ExtensionService, ExtensionServiceFiles, StopResult } from './supervisor.js';

const { isRunning, startDetached, stopProcess } = posixSupervisor;

export interface PosixServiceFiles {
  supervisorPidFile: string;
  /** Names the process that syncs (written by the worker). */
  workerPidFile: string;
  serviceLock: string;
  /** The supervisor's and worker's stdout/stderr. */
  outputFile: string;
}

interface StartServiceOptions {
  files: PosixServiceFiles;
  /** node [script]: the loop appends `service`. */
  kvvmCommand: string[];
  env: Record<string, string>;
  cwd: string;
  policy?: RestartPolicy | undefined;
  shell?: string | undefined;
}

/** How long start waits for the supervisor to say it holds the service lock (it takes it at once, or exits). */
const SUPERVISOR_LOCK_WAIT_MS = 15_000;

/**
 * Starts the supervisor and resolves once it holds the service lock (restartLoop.ts: it says so on a pipe), with
 * the supervisor's pid. It does not wait for the worker's Node start, a second Node start on top of enable's own
 * (bench/, figure 3): from the lock on, the worker is the supervisor's job, and a worker that cannot start is
 * reported in the status by the supervisor's crash loop (`kvvm service-crashed`). kvvm-service.pid names the worker
 * once it runs. Throws when the supervisor exited before it held the lock (held elsewhere, or flock is missing).
 */
async function startSupervisedService(options: StartServiceOptions): Promise<{ pid: number }> {
  await removePidFile(options.files.workerPidFile);
  const { pid, ready } = await startDetached({
    command: options.shell ?? '/bin/sh',
    args: restartLoopArgs(options.files.serviceLock, options.kvvmCommand, options.policy),
    env: { ...options.env, [SUPERVISOR_READY_FD_ENV]: '3' },
    cwd: options.cwd,
    pidFile: options.files.supervisorPidFile,
    logFile: options.files.outputFile,
    readyWaitMs: SUPERVISOR_LOCK_WAIT_MS,
  });
  // 'silent' (no word within the wait) is left to the supervisor, as a slow start always was: it is running.
  if ((await ready) === 'exited') throw new SupervisorExited(options.files);
  return { pid };
}

/** The supervisor closed its ready pipe unwritten: it exited before it held the service lock. */
class SupervisorExited extends KvvmError {
  constructor(files: PosixServiceFiles) {
    super('service-start', 'The service supervisor exited before it held the service lock.', {
      fix: `Read ${files.outputFile}: another service may hold ${files.serviceLock}, or /bin/sh or flock is missing.`,
      code: -1,
    });
  }
}

/** Running = the supervisor is alive (between a crash and the restart the worker may briefly be gone). */
function isServiceRunning(files: PosixServiceFiles): Promise<{ running: boolean; pid?: number }> {
  return isRunning(files.supervisorPidFile);
}

export interface StopServiceOptions {
  timeoutMs: number;
  inspector?: ProcessInspector | undefined;
}

/**
 * Stops the supervisor (its process group holds the worker too), then a worker left without one (an older
 * kvvm's, or one whose supervisor was SIGKILLed), then any process still holding the service lock. Resolves
 * only when no service is left; otherwise throws naming the survivors.
 */
export async function stopService(files: PosixServiceFiles, options: StopServiceOptions): Promise<StopResult> {
  const outcomes = await stopRecorded(files, options);
  if ((await clearServiceLock(files)) === 'killed') outcomes.push('killed');
  if (outcomes.includes('killed')) return 'killed';
  return outcomes.includes('stopped') ? 'stopped' : 'not-running';
}

/** The supervisor and the worker their records name. */
async function stopRecorded(files: PosixServiceFiles, options: StopServiceOptions): Promise<StopResult[]> {
  return [await stopProcess(files.supervisorPidFile, options), await stopProcess(files.workerPidFile, options)];
}

/** 'free' when no process holds the service lock; 'killed' when its holders had to be SIGKILLed; throws if they survive. */
async function clearServiceLock(files: PosixServiceFiles): Promise<'free' | 'killed'> {
  const lock = await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'checking that no service is left' });
  if (lock) {
    await lock.release();
    return 'free';
  }
  const holders = await lockHolders(files.serviceLock);
  for (const pid of holders) signal(pid, 'SIGKILL');
  const after = await tryAcquireLock(files.serviceLock, { waitMs: 5000, purpose: 'checking that no service is left' });
  if (!after) {
    throw new KvvmError('service-stop', `A service still holds ${files.serviceLock} after stopping (processes ${holders.join(', ') || 'unknown'}).`, {
      fix: 'Stop those processes (kill -9), then run disable or enable again.',
      code: -1,
    });
  }
  await after.release();
  return 'killed';
}

/**
 * stop, afterStop, start without stop's own lock check: the supervisor takes the service lock as it starts, and
 * only when it could not (it exited) is the lock cleared (its holders SIGKILLed) and the start repeated once. A
 * supervisor that exited while the lock was free failed for another reason, which the first error names.
 */
async function replaceSupervisedService(options: StartServiceOptions, timeoutMs: number, afterStop: () => Promise<void>): Promise<{ pid: number }> {
  await stopRecorded(options.files, { timeoutMs });
  await afterStop();
  try {
    return await startSupervisedService(options);
  } catch (err) {
    if (!(err instanceof SupervisorExited) || (await clearServiceLock(options.files)) === 'free') throw err;
    return startSupervisedService(options);
  }
}

/** Linux: every process with an open descriptor on the lock file (/proc/<pid>/fd links). */
async function lockHolders(lockFile: string, procRoot = '/proc'): Promise<number[]> {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch {
    return pids;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let fds: string[];
    try {
      fds = await readdir(`${procRoot}/${name}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    for (const fd of fds) {
      const target = await readlink(`${procRoot}/${name}/fd/${fd}`).catch(() => '');
      if (target === lockFile) {
        pids.push(Number(name));
        break;
      }
    }
  }
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 1) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * enable, disable and uninstall run one at a time per extension (the agent runs them in sequence; people and
 * retries do not). The wait covers a disable stopping a service (30 s, then SIGKILL) with a wide margin, and
 * stays inside the agent's 300 s command timeout.
 */
const COMMAND_LOCK_WAIT_MS = 120_000;

/** One agent command at a time: flock on the extension's command lock (POSIX; systemd or not). */
export function underCommandLock<T>(commandLock: string, fn: () => Promise<T>): Promise<T> {
  return withLock(commandLock, { waitMs: COMMAND_LOCK_WAIT_MS, purpose: 'one extension command at a time' }, fn);
}

export function posixServiceFiles(files: ExtensionServiceFiles): PosixServiceFiles {
  return { supervisorPidFile: files.supervisorPidFile, workerPidFile: files.pidFile, serviceLock: files.serviceLock, outputFile: files.serviceOutput };
}

/** The service as a detached restart supervisor (systems without systemd as PID 1, containers, CI). */
export function detachedExtensionService(files: ExtensionServiceFiles, policy: RestartPolicy): ExtensionService {
  const posix = posixServiceFiles(files);
  return {
    isRunning: () => isServiceRunning(posix),
    start: (launch) => startSupervisedService({ files: posix, kvvmCommand: launch.kvvmCommand, env: launch.env, cwd: launch.cwd, policy }),
    stop: (timeoutMs) => stopService(posix, { timeoutMs }),
    replace: (launch, timeoutMs, afterStop) =>
      replaceSupervisedService({ files: posix, kvvmCommand: launch.kvvmCommand, env: launch.env, cwd: launch.cwd, policy }, timeoutMs, afterStop),
    unregister: async () => undefined,
    oneCommandAtATime: (fn) => underCommandLock(files.commandLock, fn),
  };
}
