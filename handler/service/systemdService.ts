/**
 * The `akvvm_service` systemd unit as enable/disable/uninstall drive it (text in systemdUnit.ts). systemctl runs
 * without a shell and with a time limit; a failing step is an error naming the exact command. Whatever systemd
 * reports, "no service left" is still decided by the service lock (posixService.stopService).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KvvmError } from '../errors.js';
import { writeFileAtomic } from '../protocol/atomicFile.js';
import { posixServiceFiles, stopService, underCommandLock, type PosixServiceFiles } from './posixService.js';
import { posixSupervisor } from './posixSupervisor.js';
import type { RestartPolicy } from './restartLoop.js';
import type { ExtensionService, ExtensionServiceFiles, StopResult } from './supervisor.js';
import {
  renderUnit,
  supervisorScriptFile,
  SYSTEMD_RUNTIME_DIR,
  SYSTEMD_UNIT_DIR,
  SYSTEMD_UNIT_NAME,
  SUPERVISOR_SCRIPT_FILE,
  systemctlSteps,
  unitOwner,
  type UnitOptions,
  unitEnvironment,
} from './systemdUnit.js';

/** Runs `systemctl <args>` and resolves its exit code. */
export type SystemctlRunner = (args: string[]) => Promise<number>;

const SYSTEMCTL_TIMEOUT_MS = 90_000;

export function systemdBooted(exists: (path: string) => boolean = existsSync): boolean {
  return exists(SYSTEMD_RUNTIME_DIR);
}

const runSystemctl: SystemctlRunner = (args) =>
  new Promise((resolve) => {
    execFile('systemctl', args, { timeout: SYSTEMCTL_TIMEOUT_MS }, (err) => {
      if (!err) return resolve(0);
      const code = (err as { code?: unknown }).code;
      resolve(typeof code === 'number' ? code : -1);
    });
  });

async function step(run: SystemctlRunner, args: string[]): Promise<void> {
  const code = await run(args);
  if (code !== 0) {
    throw new KvvmError('systemctl-failed', `systemctl ${args.join(' ')} exited with ${code}.`, {
      fix: `Run "systemctl status ${SYSTEMD_UNIT_NAME}" and "journalctl -u ${SYSTEMD_UNIT_NAME}" to see why.`,
      code: -1,
    });
  }
}

export interface SystemdStartOptions {
  files: PosixServiceFiles;
  unit: Omit<UnitOptions, 'supervisorScript' | 'serviceLock' | 'outputFile'>;
  run: SystemctlRunner;
  unitDir?: string;
  workerWaitMs?: number;
}

/**
 * Waits until kvvm-service.pid names a live worker; undefined when it is slow (it is supervised either way).
 * Throws when the unit went inactive first: the lock was held elsewhere, or /bin/sh or flock is missing. Under
 * systemd the supervisor has no pipe to enable (the detached start's handshake, posixService.ts), so enable waits
 * for the worker's record here; systemd is not on this project's machines, and this path is not measured.
 */
async function awaitWorker(files: PosixServiceFiles, unitActive: () => Promise<boolean>, waitMs: number): Promise<number | undefined> {
  const deadline = performance.now() + waitMs;
  while (performance.now() < deadline) {
    const worker = await posixSupervisor.isRunning(files.workerPidFile);
    if (worker.running && worker.pid !== undefined) return worker.pid;
    if (!(await unitActive())) {
      throw new KvvmError('service-start', 'The service supervisor exited before its worker started.', {
        fix: `Read ${files.outputFile}: another service may hold ${files.serviceLock}, or /bin/sh or flock is missing.`,
        code: -1,
      });
    }
    await delay(10);
  }
  return undefined;
}

/** Writes the supervisor script and the unit, then daemon-reload, enable, restart; waits for the worker's record. */
export async function startSystemdService(options: SystemdStartOptions): Promise<{ pid: number; supervisorPid: number }> {
  const script = join(options.unit.extensionFolder, SUPERVISOR_SCRIPT_FILE);
  await writeFileAtomic(script, supervisorScriptFile());
  await chmod(script, 0o700);
  const unitText = renderUnit({ ...options.unit, supervisorScript: script, serviceLock: options.files.serviceLock, outputFile: options.files.outputFile });
  await writeFileAtomic(join(options.unitDir ?? SYSTEMD_UNIT_DIR, SYSTEMD_UNIT_NAME), unitText);
  for (const args of systemctlSteps.start()) await step(options.run, args);
  const pid = await awaitWorker(options.files, async () => (await options.run(systemctlSteps.isActive())) === 0, options.workerWaitMs ?? 15_000);
  return { pid: pid ?? 0, supervisorPid: 0 };
}

async function isSystemdServiceRunning(run: SystemctlRunner): Promise<{ running: boolean }> {
  return { running: (await run(systemctlSteps.isActive())) === 0 };
}

export async function stopSystemdService(files: PosixServiceFiles, run: SystemctlRunner, timeoutMs: number): Promise<StopResult> {
  const wasActive = (await run(systemctlSteps.isActive())) === 0;
  // `systemctl disable` of a unit that was never written fails ("does not exist"): only ask for what is there.
  // An inactive unit that is still enabled (its service crashed, or stopped by hand) is disabled too.
  const wasEnabled = (await run(systemctlSteps.isEnabled())) === 0;
  if (wasActive || wasEnabled) for (const args of systemctlSteps.stop(wasActive)) await step(run, args);
  const leftover = await stopService(files, { timeoutMs });
  return wasActive ? (leftover === 'killed' ? 'killed' : 'stopped') : leftover;
}

/** Disables and removes the unit if it is this extension folder's; another version's unit is left alone. */
export async function removeSystemdUnit(extensionFolder: string, run: SystemctlRunner, unitDir = SYSTEMD_UNIT_DIR): Promise<'removed' | 'absent' | 'not-ours'> {
  const file = join(unitDir, SYSTEMD_UNIT_NAME);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return 'absent';
  }
  if (unitOwner(text) !== extensionFolder) return 'not-ours';
  const { before, after } = systemctlSteps.remove();
  for (const args of before) await step(run, args);
  await rm(file, { force: true });
  for (const args of after) await step(run, args);
  await rm(join(extensionFolder, SUPERVISOR_SCRIPT_FILE), { force: true });
  return 'removed';
}

/** The service as the akvvm_service systemd unit (Linux with systemd as PID 1). */
export function systemdExtensionService(files: ExtensionServiceFiles, policy: RestartPolicy, run: SystemctlRunner = runSystemctl): ExtensionService {
  const posix = posixServiceFiles(files);
  const start: ExtensionService['start'] = (launch) =>
    startSystemdService({
      files: posix,
      run,
      unit: { extensionFolder: launch.cwd, version: launch.version, kvvmCommand: launch.kvvmCommand, env: unitEnvironment(launch.env), policy },
    });
  return {
    isRunning: () => isSystemdServiceRunning(run),
    start,
    stop: (timeoutMs) => stopSystemdService(posix, run, timeoutMs),
    // systemctl restart reports a supervisor that cannot take the lock only through the worker wait: stop checks first.
    replace: async (launch, timeoutMs, afterStop) => {
      await stopSystemdService(posix, run, timeoutMs);
      await afterStop();
      return start(launch);
    },
    unregister: async () => `systemd unit ${await removeSystemdUnit(files.extensionFolder, run)}`,
    oneCommandAtATime: (fn) => underCommandLock(files.commandLock, fn),
  };
}
