import { posixSupervisor } from './posixSupervisor.js';
import { detachedExtensionService } from './posixService.js';
import type { RestartPolicy } from './restartLoop.js';
import type { ExtensionService, ExtensionServiceFiles, Supervisor } from './supervisor.js';
import { systemdBooted, systemdExtensionService } from './systemdService.js';
import { windowsExtensionService, windowsSupervisor } from './windowsService.js';

/** The supervisor for the platform the command host reports (injected, never read from process.platform here). */
export function supervisorFor(platform: NodeJS.Platform): Supervisor {
  return platform === 'win32' ? windowsSupervisor : posixSupervisor;
}

export interface ExtensionServiceOptions {
  /** The restart policy of the POSIX supervisor (systemd or detached). */
  policy: RestartPolicy;
  /** KVVM_INIT=none: start detached even where systemd is PID 1 (never needed by operators). */
  initNone?: boolean;
  /** Whether systemd is PID 1 (sd_booted); injected by tests. */
  systemdBooted?: () => boolean;
}

/**
 * The extension's service for the injected platform: the Windows service; on Linux with systemd as PID 1 the
 * akvvm_service unit; elsewhere (other POSIX systems, containers, CI) the detached restart supervisor.
 */
export function extensionServiceFor(platform: NodeJS.Platform, files: ExtensionServiceFiles, options: ExtensionServiceOptions): ExtensionService {
  if (platform === 'win32') return windowsExtensionService(files);
  if (platform === 'linux' && !options.initNone && (options.systemdBooted ?? systemdBooted)()) return systemdExtensionService(files, options.policy);
  return detachedExtensionService(files, options.policy);
}
