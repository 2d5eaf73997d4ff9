import { readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../protocol/atomicFile.js';

/**
 * The pid file names the service process AND how to recognise it again. A pid alone is not enough: after a
 * reboot or a long uptime the number is reused, and "the service is running" would then be a lie that stops
 * enable from starting it (or makes disable kill a stranger). The start marker is the process start time in
 * clock ticks since boot (field 22 of /proc/<pid>/stat), which together with the boot id is unique per process.
 */
export interface PidRecord {
  pid: number;
  /** How startMarker was obtained; a record is only compared with a marker of the same kind. */
  markerKind: MarkerKind;
  /** undefined when the process had already exited when we looked: the record then never matches anything. */
  startMarker: string | undefined;
  command: string;
  startedAt: string;
}

type MarkerKind = 'linux-proc-starttime' | 'none';

/** Reads identity facts about live processes; one implementation per platform. */
export interface ProcessInspector {
  readonly markerKind: MarkerKind;
  /** The start marker of a live, non-zombie process, or undefined if there is no such process. */
  startMarker(pid: number): Promise<string | undefined>;
}

/**
 * Linux: /proc/<pid>/stat. The command name (field 2) may contain spaces and parentheses, so fields are counted
 * after the LAST ')'. A zombie (state Z) has exited and only waits for its parent to reap it: not running.
 * The boot id is part of the marker so a record written before a reboot cannot match after it.
 */
export function linuxProcInspector(procRoot = '/proc'): ProcessInspector {
  // procfs files and the pid record are read synchronously: small, in memory, and each read through fs/promises
  // is four thread-pool round trips (open, fstat, read, close); enable reads several (bench/ figure 3).
  let bootId: string | undefined;
  return {
    markerKind: 'linux-proc-starttime',
    async startMarker(pid) {
      let stat: string;
      try {
        stat = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
      } catch {
        return undefined;
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the ')' the fields start at number 3 (state); starttime is field 22.
      const state = fields[0];
      const startTime = fields[22 - 3];
      if (state === undefined || state === 'Z' || state === 'X' || startTime === undefined) return undefined;
      if (bootId === undefined) {
        try {
          bootId = readFileSync(`${procRoot}/sys/kernel/random/boot_id`, 'utf8').trim();
        } catch {
          bootId = 'unknown-boot';
        }
      }
      return `${bootId}:${startTime}`;
    },
  };
}

/** Other POSIX systems: existence only (kill 0). Recycled pids cannot be told apart there. */
function signalOnlyInspector(): ProcessInspector {
  return {
    markerKind: 'none',
    async startMarker(pid) {
      try {
        process.kill(pid, 0);
        return '';
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EPERM' ? '' : undefined;
      }
    },
  };
}

export function defaultInspector(platform: NodeJS.Platform = process.platform): ProcessInspector {
  return platform === 'linux' ? linuxProcInspector() : signalOnlyInspector();
}

export async function writePidFile(path: string, record: PidRecord): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(record)}\n`);
}

/** undefined for a missing, empty or damaged pid file: all of them mean "no service we can identify". */
export async function readPidFile(path: string): Promise<PidRecord | undefined> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const r = doc as Record<string, unknown>;
  const pid = r['pid'];
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1) return undefined;
  if (r['markerKind'] !== 'linux-proc-starttime' && r['markerKind'] !== 'none') return undefined;
  const marker = r['startMarker'];
  return {
    pid,
    markerKind: r['markerKind'],
    startMarker: typeof marker === 'string' ? marker : undefined,
    command: typeof r['command'] === 'string' ? r['command'] : '',
    startedAt: typeof r['startedAt'] === 'string' ? r['startedAt'] : '',
  };
}

export async function removePidFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
