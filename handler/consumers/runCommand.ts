/**
 * Runs one onChange command: an argument vector, never through a shell, with a time limit that kills the
 * command's whole process group, and output captured up to a size cap (redacted before anyone sees it).
 *
 * On Linux the command starts in its own session (detached: setsid), so its process id is its process group id and
 * kill(-pid) reaches every process it started that did not leave the group on purpose (a daemon that calls setsid
 * itself is meant to outlive it). When the command exits, what is left of its group is killed too, so a reload
 * script cannot leave a forgotten background process behind. On Windows, where there are no process groups, the
 * tree is ended with taskkill /T.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { win32 } from 'node:path';
import { redactSecrets as redact } from '../redaction.js';

export interface CommandOutcome {
  argv: readonly string[];
  /** Exit code, or null when it ended by a signal / could not start. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Could not be started at all (ENOENT, EACCES): the message. */
  spawnError?: string;
  /** Captured output, at most `maxOutputBytes` each, redacted. */
  stdout: string;
  stderr: string;
  /** Bytes beyond the cap that were dropped. */
  droppedBytes: number;
}

export interface RunCommandOptions {
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** After the time limit: SIGTERM to the group, then SIGKILL this much later. */
  killGraceMs?: number;
  maxOutputBytes?: number;
  platform?: NodeJS.Platform;
}

const DEFAULT_KILL_GRACE_MS = 5000;
const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024;
/** After the command exited, how long its output pipes may stay open (held by a process outside its group). */
const CLOSE_WAIT_MS = 2000;

export function runCommand(argv: readonly string[], options: RunCommandOptions): Promise<CommandOutcome> {
  const platform = options.platform ?? process.platform;
  const cap = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const grace = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve(failed(argv, 'empty command'));
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        shell: false,
        detached: platform !== 'win32',
        windowsHide: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...options.env },
        cwd: platform === 'win32' ? (options.env['SystemRoot'] ?? 'C:\\Windows') : '/',
      });
    } catch (err) {
      resolve(failed(argv, err instanceof Error ? err.message : String(err)));
      return;
    }
    const out = capture(cap);
    const errOut = capture(cap);
    child.stdout?.on('data', (chunk: Buffer) => out.add(chunk));
    child.stderr?.on('data', (chunk: Buffer) => errOut.add(chunk));

    let timedOut = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: string | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const limitTimer = setTimeout(() => {
      timedOut = true;
      killTree(child, platform, 'SIGTERM', options.env);
      killTimer = setTimeout(() => killTree(child, platform, 'SIGKILL', options.env), grace);
    }, options.timeoutMs);

    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(limitTimer);
      clearTimeout(killTimer);
      clearTimeout(closeTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const outcome: CommandOutcome = {
        argv,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        stdout: redact(out.text()),
        stderr: redact(errOut.text()),
        droppedBytes: out.dropped() + errOut.dropped(),
      };
      if (spawnError !== undefined) outcome.spawnError = spawnError;
      resolve(outcome);
    };
    child.once('error', (err) => {
      spawnError = err.message;
      finish();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // Whatever the command left running in its group goes with it: no orphans.
      if (platform !== 'win32') killGroup(child.pid, 'SIGKILL');
      closeTimer = setTimeout(finish, CLOSE_WAIT_MS);
    });
    child.once('close', finish);
  });
}

function failed(argv: readonly string[], message: string): CommandOutcome {
  return { argv, exitCode: null, signal: null, timedOut: false, spawnError: message, stdout: '', stderr: '', droppedBytes: 0 };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

function killTree(child: ChildProcess, platform: NodeJS.Platform, signal: NodeJS.Signals, env: Readonly<Record<string, string>>): void {
  if (platform !== 'win32') {
    killGroup(child.pid, signal);
    return;
  }
  if (child.pid === undefined) return;
  // taskkill by absolute path: the command's own PATH must not choose what kills it.
  const taskkill = win32.join(env['SystemRoot'] ?? 'C:\\Windows', 'System32', 'taskkill.exe');
  const killer = spawn(taskkill, ['/PID', String(child.pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true });
  killer.once('error', () => child.kill(signal));
}

/** Keeps the first `cap` bytes of a stream and counts the rest. */
function capture(cap: number): { add(chunk: Buffer): void; text(): string; dropped(): number } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = 0;
  return {
    add(chunk) {
      const room = cap - kept;
      if (room > 0) {
        const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
        chunks.push(part);
        kept += part.length;
      }
      dropped += Math.max(0, chunk.length - Math.max(0, room));
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
    dropped: () => dropped,
  };
}
