/**
 * The service supervisor contract: how the commands start, query, stop and remove the long-lived sync service.
 * One implementation per platform, chosen from the injected platform by supervisorFor.ts:
 *   POSIX   posixSupervisor.ts: a detached child in its own session, tracked by a pid file.
 *   Windows windowsService.ts: the "kvvm" Windows service, registered and controlled through the SCM.
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
}

export interface StopOptions {
  /** How long the service gets to exit before it is killed (POSIX: SIGTERM then SIGKILL; Windows: STOP then TerminateProcess). */
  timeoutMs: number;
  pollMs?: number | undefined;
  inspector?: ProcessInspector | undefined;
}

export type StopResult = 'stopped' | 'not-running' | 'killed';

export interface Supervisor {
  startDetached(options: StartDetachedOptions): Promise<{ pid: number }>;
  isRunning(pidFile: string, options?: { inspector?: ProcessInspector }): Promise<{ running: boolean; pid?: number }>;
  stopProcess(pidFile: string, options: StopOptions): Promise<StopResult>;
  /**
   * Uninstall, after stopProcess: removes whatever the platform registered for the service beyond the pid file.
   * Returns a sentence for the operator saying what happened, or undefined when nothing was registered by design.
   */
  remove(pidFile: string): Promise<string | undefined>;
}
