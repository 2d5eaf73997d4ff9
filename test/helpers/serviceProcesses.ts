/**
 * The service's real processes for one extension folder, found in /proc rather than through kvvm's pid files
 * (which are what is under test): supervisors are `/bin/sh -c <loop> kvvm-supervisor <lock> …` with the
 * extension folder's lock, workers are `node …cli.js service` whose cwd is the extension folder.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { readPidFile } from '../../handler/service/pidfile.js';

export interface ServiceProcesses {
  supervisors: number[];
  workers: number[];
}

export function serviceProcesses(extensionFolder: string): ServiceProcesses {
  const out: ServiceProcesses = { supervisors: [], workers: [] };
  const lock = join(extensionFolder, 'kvvm-service.lock');
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    let cwd: string;
    let state: string;
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
      cwd = readlinkSync(`/proc/${name}/cwd`);
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      continue;
    }
    if (state === 'Z') continue;
    const supervisorAt = argv.indexOf('kvvm-supervisor');
    if (supervisorAt > 0 && argv[supervisorAt + 1] === lock) out.supervisors.push(Number(name));
    else if (cwd === extensionFolder && argv.at(-2)?.endsWith('cli.js') && argv.at(-1) === 'service') out.workers.push(Number(name));
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until kvvm-service.pid names a live worker of this extension folder, and returns its pid. Enable returns
 * once the supervisor holds the service lock, before the worker's Node start has recorded it (posixService.ts),
 * so a test that needs the worker waits for it here (a liveness deadline, not a timing assertion).
 */
export async function recordedWorker(extensionFolder: string, limitMs = 60_000): Promise<number> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const record = await readPidFile(join(extensionFolder, 'kvvm-service.pid'));
    if (record && pidAlive(record.pid) && serviceProcesses(extensionFolder).workers.includes(record.pid)) return record.pid;
    if (Date.now() > deadline) throw new Error(`no worker recorded in ${extensionFolder}/kvvm-service.pid after ${limitMs} ms`);
    await delay(20);
  }
}
