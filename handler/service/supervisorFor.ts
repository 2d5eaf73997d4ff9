import { posixSupervisor } from './posixSupervisor.js';
import type { Supervisor } from './supervisor.js';
import { windowsSupervisor } from './windowsService.js';

/** The supervisor for the platform the command host reports (injected, never read from process.platform here). */
export function supervisorFor(platform: NodeJS.Platform): Supervisor {
  return platform === 'win32' ? windowsSupervisor : posixSupervisor;
}
