/**
 * kvvm-service.pid, written by the process that syncs itself: after a crash and restart it names the new
 * worker without the supervisor (a shell) having to read /proc. Removed on a clean exit only if it still
 * names this process, so a worker that lingers while its successor starts cannot erase the successor's record.
 */
import { defaultInspector, readPidFile, removePidFile, writePidFile, type PidRecord } from './pidfile.js';

export async function recordWorkerPid(pidFile: string, now: Date): Promise<PidRecord> {
  const inspector = defaultInspector();
  const record: PidRecord = {
    pid: process.pid,
    markerKind: inspector.markerKind,
    startMarker: await inspector.startMarker(process.pid),
    command: process.argv.join(' ').slice(0, 1024),
    startedAt: now.toISOString(),
  };
  try {
    await writePidFile(pidFile, record);
  } catch {
    // A full disk must not stop the service; stopService also finds a worker through its supervisor's group.
  }
  return record;
}

export async function releaseWorkerPid(pidFile: string, own: PidRecord): Promise<void> {
  const current = await readPidFile(pidFile);
  if (current?.pid === own.pid && current.startMarker === own.startMarker) await removePidFile(pidFile);
}
