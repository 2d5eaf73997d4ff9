/** Small measuring helpers shared by the scenarios. */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync } from 'node:fs';
import type { SyncLogger } from '../handler/engine/certificateSync.js';

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/**
 * Wall time of one process run to completion, ms, timed synchronously (this process does nothing else meanwhile).
 * `pipeOutput`: its stdout and stderr go to pipes, as the guest agent runs a handler command, instead of nowhere.
 */
export function timeProcess(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; pipeOutput?: boolean } = {}): number {
  const t0 = nowMs();
  const r = spawnSync(command, args, { stdio: options.pipeOutput ? ['ignore', 'pipe', 'pipe'] : 'ignore', env: options.env, cwd: options.cwd });
  const t = nowMs() - t0;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${String(r.status)}${options.pipeOutput ? `: ${String(r.stderr).slice(0, 500)}` : ''}`);
  return t;
}

/**
 * The dev vault's limiter is a fixed window (handler/devvault/rateLimiter.ts): requests that start in a fresh window
 * get `rate.requests` at once and wait for a window boundary only past that, so R requests cannot all be answered
 * before floor((R-1)/rate.requests) windows. That is the true lower bound (R/rate is not: 1,000 requests fit in one
 * window).
 */
export function limiterMinimumMs(requests: number, rate: { requests: number; windowMs: number }): number {
  return Math.floor(Math.max(0, requests - 1) / rate.requests) * rate.windowMs;
}

export const CLK_TCK = 100;

/** utime + stime of a process from /proc/<pid>/stat, ms (Linux; clock ticks of 10 ms). */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/**
 * Every process of a session (field 6 of /proc/<pid>/stat): the service runs in its own session (its supervisor
 * calls setsid), so this is the supervisor, the worker and anything either started (hooks, a restart's sleep).
 */
export function sessionPids(sid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited
    }
    // fields after the command: state, ppid, pgrp, session
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[3]) === sid) pids.push(Number(name));
  }
  return pids;
}

/** VmRSS of a process, MiB (threads, the parser's worker threads included, share their process's figure). */
export function procRssMiB(pid: number): number {
  return procStatusMiB(pid, 'VmRSS');
}

/** VmHWM: the most a process has had resident since it started, MiB (0 when it has exited). */
export function procPeakRssMiB(pid: number): number {
  try {
    return procStatusMiB(pid, 'VmHWM');
  } catch {
    return 0;
  }
}

/** VmRSS split into anonymous memory and file pages (mostly the Node binary's), MiB. */
export function procRssSplitMiB(pid: number): { anon: number; file: number } {
  return { anon: procStatusMiB(pid, 'RssAnon'), file: procStatusMiB(pid, 'RssFile') };
}

function procStatusMiB(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for ${pid}`);
  return Number(m[1]) / 1024;
}

/**
 * Drops a file's pages from the page cache (written back first: dirty pages cannot be dropped), so the next
 * processes that map it read it as after a reboot. Linux (coreutils dd: iflag=nocache with count=0 advises
 * POSIX_FADV_DONTNEED for the whole file).
 */
export function dropFromPageCache(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const r = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`dd could not drop ${file} from the page cache: ${r.stderr.toString().trim()}`);
}

/** A logger that drops messages (they never contain secret values anyway) and counts errors. */
export function countingLogger(): SyncLogger & { errors: number; firstError: string | undefined } {
  const log = {
    errors: 0,
    firstError: undefined as string | undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (message: string) => {
      log.errors += 1;
      log.firstError ??= message;
    },
  };
  return log;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
