/**
 * The service supervisor contract: how the commands start, query, stop and remove the long-lived sync service.
 * One implementation per platform, chosen from the injected platform by supervisorFor.ts:
 *   POSIX   posixSupervisor.ts: a detached child in its own session, tracked by a pid file.
 *   Windows windowsService.ts: the "kvvm" Windows service, registered and controlled through the SCM.
 * On top of it, the extension's service as the agent commands drive it (ExtensionService): one implementation per
 * way the service runs, chosen from the injected platform by supervisorFor.ts (extensionServiceFor):
 *   Windows  windowsService.ts: the Windows service; the SCM serialises it.
 *   systemd  systemdService.ts: the akvvm_service unit, where systemd is PID 1.
 *   POSIX    posixService.ts: the detached restart supervisor (other systems, containers, CI).
 * This file holds types only, so the implementations import it and nothing imports back.
 */
import type { ProcessInspector } from './pidfile.js';

export interface StartDetachedOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  pidFile: string;
  /** stdout and stderr are appended here; without it they go to /dev/null. */
  logFile?: string | undefined;
  inspector?: ProcessInspector | undefined;
  now?: (() => Date) | undefined;
  /**
   * POSIX: a pipe is passed to the process as fd 3, and `ready` (in the result) says, within this many ms, whether
   * the process wrote to it ('ready'), closed it unwritten ('exited': it exited first) or neither ('silent').
   * The Windows service ignores it.
   */
  readyWaitMs?: number | undefined;
}

export type ReadySignal = 'ready' | 'exited' | 'silent';

interface StartedProcess {
  pid: number;
  /** With readyWaitMs: what the process said on fd 3. */
  ready?: Promise<ReadySignal> | undefined;
}

export interface StopOptions {
  /** How long the service gets to exit before it is killed (POSIX: SIGTERM then SIGKILL; Windows: STOP then TerminateProcess). */
  timeoutMs: number;
  pollMs?: number | undefined;
  inspector?: ProcessInspector | undefined;
}

export type StopResult = 'stopped' | 'not-running' | 'killed';

/** The files of one extension's service (commands/context.ts servicePaths). */
export interface ExtensionServiceFiles {
  extensionFolder: string;
  /** Names the process that syncs. */
  pidFile: string;
  /** POSIX: the restart supervisor's own record. */
  supervisorPidFile: string;
  /** flock'd by the running service's supervisor for its whole life: one service per extension. */
  serviceLock: string;
  /** flock'd by enable, disable and uninstall for their whole run: one agent command at a time. */
  commandLock: string;
  /** The service's stdout and stderr. */
  serviceOutput: string;
}

/** What a start needs: the kvvm command line (node [script]), its environment and folder, the extension version. */
interface ServiceLaunch {
  kvvmCommand: string[];
  env: Record<string, string>;
  cwd: string;
  version: string;
}

/** The extension's service as the agent commands see it, one shape for every way it runs. */
export interface ExtensionService {
  isRunning(): Promise<{ running: boolean; pid?: number }>;
  start(launch: ServiceLaunch): Promise<{ pid: number }>;
  /** Resolves when no service is left; throws otherwise. */
  stop(timeoutMs: number): Promise<StopResult>;
  /**
   * enable: stop() what runs, then `afterStop` (its status), then start(launch). The POSIX supervisor's own
   * lock-taking replaces stop()'s separate check of the service lock (one flock process fewer per enable): a held
   * lock makes the supervisor exit, and only then is the holder found and stopped and the start repeated.
   */
  replace(launch: ServiceLaunch, timeoutMs: number, afterStop: () => Promise<void>): Promise<{ pid: number }>;
  /** uninstall, after stop: what registers the service with the system goes too; a sentence for the operator, or undefined. */
  unregister(): Promise<string | undefined>;
  /** Runs one agent command (enable, disable, uninstall) at a time for this extension. */
  oneCommandAtATime<T>(fn: () => Promise<T>): Promise<T>;
}

export interface Supervisor {
  startDetached(options: StartDetachedOptions): Promise<StartedProcess>;
  isRunning(pidFile: string, options?: { inspector?: ProcessInspector }): Promise<{ running: boolean; pid?: number }>;
  stopProcess(pidFile: string, options: StopOptions): Promise<StopResult>;
  /**
   * Uninstall, after stopProcess: removes whatever the platform registered for the service beyond the pid file.
   * Returns a sentence for the operator saying what happened, or undefined when nothing was registered by design.
   */
  remove(pidFile: string): Promise<string | undefined>;
}
