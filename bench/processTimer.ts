/**
 * Times whole processes (common.ts timeProcess) from a small helper process instead of the bench's own.
 *
 * Node starts a child with fork() on Linux, and fork() costs in proportion to what the parent has mapped: the bench
 * process, after building the package (buffers of the runtime and the zip) or making a pool of certificates, holds
 * 250-420 MiB, and every process it started took 10-20 ms longer for it (measured 2026-12-03 on this machine: `node
 * -e 0` 30 ms from a fresh process, 47 ms after the package build, 41 ms after a GC; `openssl pkcs12` 10.1 ms, 25.2 ms
 * beside 320 MiB of buffers). Both sides of a ratio grew by the same amount, so a floor timed that way was not the
 * floor (figure 3: enable 2.3-2.7x `node -e 0` from the bench process, 3.1-3.9x from a small one), and how much the
 * bench held at that moment moved it. The guest agent that runs the handler is a Python process of a few tens of MiB;
 * this helper, a Node process that loads nothing but this file, is of that size.
 *
 * Parent side: startProcessTimer(). Child side: this module run with --child.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { timeProcess } from './common.js';
import { ipcRequester } from './ipcRequests.js';

interface TimedRun {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  pipeOutput?: boolean;
}

export interface ProcessTimer {
  /** Wall time of the run in ms, timed synchronously in the helper (which does nothing else meanwhile). */
  time(run: TimedRun): Promise<number>;
  close(): Promise<void>;
}

type Request = { id: number; run: TimedRun };
type Reply = { id: number; ms?: number; error?: string };

const SELF = fileURLToPath(import.meta.url);

export function startProcessTimer(): ProcessTimer {
  const child: ChildProcess = fork(SELF, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const ask = ipcRequester<{ run: TimedRun }, Reply>(child, 'process timer');
  return {
    async time(run) {
      const r = await ask({ run });
      if (r.error !== undefined || r.ms === undefined) throw new Error(r.error ?? 'process timer: no time');
      return r.ms;
    },
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.disconnect();
      }),
  };
}

if (process.argv[2] === '--child' && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.on('message', (m: Request) => {
    const reply: Reply = { id: m.id };
    try {
      const { command, args, ...options } = m.run;
      reply.ms = timeProcess(command, args, options);
    } catch (err) {
      reply.error = err instanceof Error ? err.message : String(err);
    }
    process.send?.(reply);
  });
}
