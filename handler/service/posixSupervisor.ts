/**
 * The POSIX Supervisor: runs the long-lived sync service outside the enable command. The agent kills enable's whole
 * process group when enable times out (and the command's shell exits as soon as enable returns), so the service
 * must live in its own session: `detached: true` makes the child call setsid(), giving it a new session and process
 * group whose id is its pid. That also lets stopProcess signal the service together with any helper it spawned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { KvvmError } from '../errors.js';
import { defaultInspector, readPidFile, removePidFile, writePidFile, type PidRecord, type ProcessInspector } from './pidfile.js';
import type { ReadySignal, Supervisor } from './supervisor.js';

export const posixSupervisor: Supervisor = {
  async startDetached(options) {
    const inspector = options.inspector ?? defaultInspector();
    const log = options.logFile === undefined ? undefined : await open(options.logFile, 'a', 0o640);
    let pid: number;
    let ready: Promise<ReadySignal> | undefined;
    try {
      const output = log?.fd ?? 'ignore';
      const child = spawn(options.command, options.args, {
        cwd: options.cwd,
        env: options.env,
        detached: true,
        stdio: options.readyWaitMs === undefined ? ['ignore', output, output] : ['ignore', output, output, 'pipe'],
        windowsHide: true,
      });
      pid = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => (child.pid === undefined ? reject(new Error('no pid')) : resolve(child.pid)));
      }).catch((err: unknown) => {
        throw new KvvmError('service-start', `Cannot start ${options.command}: ${(err as Error).message}.`, {
          fix: 'Check that the extension package is complete and its files are executable.',
          cause: err,
        });
      });
      if (options.readyWaitMs !== undefined) ready = readySignal(child, options.readyWaitMs);
      // Let enable exit without waiting for the service, and drop our ends of its pipes.
      child.unref();
    } finally {
      // The child has its own copy of the descriptor; ours must not keep the file open.
      await log?.close();
    }
    const record: PidRecord = {
      pid,
      markerKind: inspector.markerKind,
      startMarker: await inspector.startMarker(pid),
      command: [options.command, ...options.args].join(' ').slice(0, 1024),
      startedAt: (options.now?.() ?? new Date()).toISOString(),
    };
    await writePidFile(options.pidFile, record);
    return { pid, ready };
  },

  async isRunning(pidFile, options = {}) {
    const record = await readPidFile(pidFile);
    if (!record) return { running: false };
    const alive = await isSameProcess(record, options.inspector ?? defaultInspector());
    return alive ? { running: true, pid: record.pid } : { running: false };
  },

  async stopProcess(pidFile, options) {
    const inspector = options.inspector ?? defaultInspector();
    const pollMs = options.pollMs ?? 50;
    const record = await readPidFile(pidFile);
    if (!record || !(await isSameProcess(record, inspector))) {
      await removePidFile(pidFile);
      return 'not-running';
    }
    signalGroup(record.pid, 'SIGTERM');
    if (await waitForExit(record, inspector, options.timeoutMs, pollMs)) {
      await removePidFile(pidFile);
      return 'stopped';
    }
    signalGroup(record.pid, 'SIGKILL');
    // SIGKILL cannot be ignored; the wait only covers the kernel tearing the process down.
    if (!(await waitForExit(record, inspector, 10_000, pollMs))) {
      throw new KvvmError('service-stop', `Process ${record.pid} survived SIGKILL.`, { fix: 'Check for a process stuck in uninterruptible I/O (state D).' });
    }
    await removePidFile(pidFile);
    return 'killed';
  },

  async remove() {
    return undefined; // a detached process registers nothing beyond the pid file, which stopProcess removed
  },
};

/**
 * 'ready' once the child writes anything on its ready pipe, 'exited' when it closes the pipe unwritten and has
 * exited, 'silent' when it did neither within waitMs. Our end is closed in every case, so it never keeps this
 * process alive. The kernel closes an exiting process's descriptors before it marks it a zombie, so the pipe's end
 * can arrive while /proc still shows the process running: 'exited' waits for the child's exit (reaped by Node), so
 * a caller that then asks isRunning is told the truth (seen under load: `running: true` after 'exited').
 */
function readySignal(child: ChildProcess, waitMs: number): Promise<ReadySignal> {
  const pipe = child.stdio[3];
  if (!pipe || !('read' in pipe)) return Promise.resolve('exited');
  return new Promise<ReadySignal>((resolve) => {
    const timer = setTimeout(() => done('silent'), waitMs);
    let settled = false;
    function done(signal: ReadySignal): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pipe?.destroy();
      resolve(signal);
    }
    function exited(): void {
      if (child.exitCode !== null || child.signalCode !== null) return done('exited');
      // The timer above still bounds the wait (it keeps this process alive until the exit is reaped).
      child.once('exit', () => done('exited'));
    }
    pipe.once('data', () => done('ready'));
    pipe.once('end', exited);
    pipe.once('error', exited);
  });
}

/** The pid file's process is alive and is the one we started (not a recycled pid). */
async function isSameProcess(record: PidRecord, inspector: ProcessInspector): Promise<boolean> {
  const current = await inspector.startMarker(record.pid);
  if (current === undefined) return false;
  if (record.markerKind === 'none') return true; // written where identity cannot be checked: existence is all we have
  if (record.markerKind !== inspector.markerKind || record.startMarker === undefined) return false;
  return current === record.startMarker;
}

/** The service leads its own process group (setsid), so -pid reaches it and any helper it started. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 1) return; // never signal init, the caller's group (0) or every process (-1)
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function waitForExit(record: PidRecord, inspector: ProcessInspector, timeoutMs: number, pollMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!(await isSameProcess(record, inspector))) return true;
    if (performance.now() >= deadline) return false;
    await delay(pollMs);
  }
}
