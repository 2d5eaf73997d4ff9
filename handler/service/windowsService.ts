/**
 * The Windows `Supervisor`: enable registers (or reconfigures) the "kvvm" Windows service and starts it, disable
 * stops it, uninstall deletes it. All arguments come from windowsServiceConfig.ts (pure, tested on Linux); this file
 * makes the Service Control Manager calls through koffi (declared in platform/win32/native.ts) and closes every
 * handle. The service process itself is windowsServiceHost.ts.
 *
 * The pid file of the POSIX supervisor is kept (it names the service host's pid, for people and `kvvm doctor`),
 * but the SCM is the only judge of "running": a Windows service has no process group to signal.
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KvvmError } from '../errors.js';
import { writeFileAtomic } from '../protocol/atomicFile.js';
import { win32Error } from '../platform/win32/errors.js';
import {
  DELETE,
  ERROR_SERVICE_ALREADY_RUNNING,
  ERROR_SERVICE_CANNOT_ACCEPT_CTRL,
  ERROR_SERVICE_DOES_NOT_EXIST,
  ERROR_SERVICE_EXISTS,
  ERROR_SERVICE_MARKED_FOR_DELETE,
  ERROR_SERVICE_NOT_ACTIVE,
  SC_MANAGER_CONNECT,
  SC_MANAGER_CREATE_SERVICE,
  SC_STATUS_PROCESS_INFO,
  SERVICE_CHANGE_CONFIG,
  SERVICE_CONFIG_DESCRIPTION,
  SERVICE_CONFIG_FAILURE_ACTIONS,
  SERVICE_CONFIG_FAILURE_ACTIONS_FLAG,
  SERVICE_CONTROL_STOP,
  SERVICE_DEMAND_START,
  SERVICE_NO_CHANGE,
  SERVICE_QUERY_CONFIG,
  SERVICE_QUERY_STATUS,
  SERVICE_START,
  SERVICE_STOP,
  SERVICE_STOPPED,
  ERROR_INVALID_LEVEL,
  loadNative,
  type Handle,
  type Native,
} from '../platform/win32/native.js';
import { removePidFile, writePidFile } from './pidfile.js';
import type { ExtensionService, ExtensionServiceFiles, StartDetachedOptions, StopOptions, StopResult, Supervisor } from './supervisor.js';
import { KVVM_SERVICE_NAME, LAUNCH_FILE, ownsService, serviceEnvironment, serviceRegistration, type LaunchSpec, type ServiceRegistration } from './windowsServiceConfig.js';

const ALL_WE_USE = (SERVICE_QUERY_CONFIG | SERVICE_CHANGE_CONFIG | SERVICE_QUERY_STATUS | SERVICE_START | SERVICE_STOP | DELETE) >>> 0;
const START_WAIT_MS = 60_000;

function launchFileFor(pidFile: string): string {
  return join(dirname(pidFile), LAUNCH_FILE);
}

export interface ServiceState {
  state: number;
  pid: number;
  win32ExitCode: number;
  serviceExitCode: number;
  binaryPathName: string;
  /** SERVICE_AUTO_START while enabled; SERVICE_DEMAND_START after disable (the SCM must not start it at boot). */
  startType: number;
}

function withScm<T>(n: Native, access: number, fn: (scm: Handle) => T): T {
  const scm = n.OpenSCManagerW(null, null, access) as Handle | null;
  if (!scm) throw win32Error('OpenSCManagerW', n.GetLastError(), 'connect to the Service Control Manager');
  try {
    return fn(scm);
  } finally {
    n.CloseServiceHandle(scm);
  }
}

/** Runs fn on the opened service, or returns undefined when no service has that name. */
function withService<T>(n: Native, name: string, fn: (svc: Handle) => T): T | undefined {
  return withScm(n, SC_MANAGER_CONNECT, (scm) => {
    const svc = n.OpenServiceW(scm, name, ALL_WE_USE) as Handle | null;
    if (!svc) {
      const err = n.GetLastError();
      if (err === ERROR_SERVICE_DOES_NOT_EXIST) return undefined;
      throw win32Error('OpenServiceW', err, `open the Windows service ${name}`);
    }
    try {
      return fn(svc);
    } finally {
      n.CloseServiceHandle(svc);
    }
  });
}

function configOf(n: Native, svc: Handle): { binaryPathName: string; startType: number } {
  const needed = [0];
  n.QueryServiceConfigW(svc, null, 0, needed);
  const size = needed[0] ?? 0;
  if (size === 0) throw win32Error('QueryServiceConfigW', n.GetLastError(), 'read the service configuration');
  const buf = n.koffi.alloc('uint8_t', size);
  try {
    if (!n.QueryServiceConfigW(svc, buf, size, needed)) throw win32Error('QueryServiceConfigW', n.GetLastError(), 'read the service configuration');
    const config = n.koffi.decode(buf, n.types.QUERY_SERVICE_CONFIGW) as { lpBinaryPathName: bigint | null; dwStartType: number };
    return {
      binaryPathName: config.lpBinaryPathName ? (n.koffi.decode(config.lpBinaryPathName, 'char16_t', -1) as string) : '',
      startType: config.dwStartType,
    };
  } finally {
    n.koffi.free(buf);
  }
}

function statusOf(n: Native, svc: Handle): { state: number; pid: number; win32ExitCode: number; serviceExitCode: number } {
  const status: Record<string, number> = {};
  const needed = [0];
  if (!n.QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, status, n.koffi.sizeof(n.types.SERVICE_STATUS_PROCESS), needed)) {
    throw win32Error('QueryServiceStatusEx', n.GetLastError(), 'query the service state');
  }
  return {
    state: status['dwCurrentState'] ?? 0,
    pid: status['dwProcessId'] ?? 0,
    win32ExitCode: status['dwWin32ExitCode'] ?? 0,
    serviceExitCode: status['dwServiceSpecificExitCode'] ?? 0,
  };
}

/** The registered service's state and binary path; undefined when it is not registered. */
export function queryService(name = KVVM_SERVICE_NAME): ServiceState | undefined {
  const n = loadNative();
  return withService(n, name, (svc) => ({ ...statusOf(n, svc), ...configOf(n, svc) }));
}

/**
 * Creates the service, or brings an existing one (an older kvvm version's, or one left from a failed run) to the
 * exact configuration: binary path, auto start, LocalSystem, description, failure actions.
 */
function registerService(reg: ServiceRegistration): 'created' | 'updated' {
  const n = loadNative();
  return withScm(n, (SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE) >>> 0, (scm) => {
    let outcome: 'created' | 'updated' = 'created';
    let svc = n.CreateServiceW(
      scm,
      reg.serviceName,
      reg.displayName,
      ALL_WE_USE,
      reg.serviceType,
      reg.startType,
      reg.errorControl,
      reg.binaryPathName,
      null,
      null,
      null,
      reg.account,
      null,
    ) as Handle | null;
    if (!svc) {
      const err = n.GetLastError();
      if (err === ERROR_SERVICE_MARKED_FOR_DELETE) {
        throw new KvvmError('service-start', `The Windows service ${reg.serviceName} is marked for deletion and cannot be registered again yet.`, {
          fix: 'Close the Services console (services.msc) and any program holding the service open, then let the agent run enable again.',
        });
      }
      if (err !== ERROR_SERVICE_EXISTS) throw win32Error('CreateServiceW', err, `register the Windows service ${reg.serviceName}`);
      svc = n.OpenServiceW(scm, reg.serviceName, ALL_WE_USE) as Handle | null;
      if (!svc) throw win32Error('OpenServiceW', n.GetLastError(), `open the Windows service ${reg.serviceName}`);
      outcome = 'updated';
      if (!n.ChangeServiceConfigW(svc, reg.serviceType, reg.startType, reg.errorControl, reg.binaryPathName, null, null, null, reg.account, null, reg.displayName)) {
        const e = n.GetLastError();
        n.CloseServiceHandle(svc);
        throw win32Error('ChangeServiceConfigW', e, `reconfigure the Windows service ${reg.serviceName}`);
      }
    }
    try {
      configureRecovery(n, svc, reg);
    } finally {
      n.CloseServiceHandle(svc);
    }
    return outcome;
  });
}

function configureRecovery(n: Native, svc: Handle, reg: ServiceRegistration): void {
  const { koffi, types } = n;
  const call = (level: number, type: unknown, value: unknown, what: string, optional = false): void => {
    const mem = koffi.alloc(type, 1);
    try {
      koffi.encode(mem, type, value);
      if (!n.ChangeServiceConfig2W(svc, level, mem)) {
        const err = n.GetLastError();
        // Wine (measured) has no SERVICE_CONFIG_FAILURE_ACTIONS_FLAG; Windows has had it since Vista.
        if (optional && err === ERROR_INVALID_LEVEL) return;
        throw win32Error('ChangeServiceConfig2W', err, what);
      }
    } finally {
      koffi.free(mem);
    }
  };
  call(SERVICE_CONFIG_DESCRIPTION, types.SERVICE_DESCRIPTIONW, { lpDescription: reg.description }, 'set the service description');
  call(
    SERVICE_CONFIG_FAILURE_ACTIONS,
    types.SERVICE_FAILURE_ACTIONSW,
    {
      dwResetPeriod: reg.failureActions.resetPeriodS,
      lpRebootMsg: null,
      lpCommand: null,
      cActions: reg.failureActions.actions.length,
      lpsaActions: reg.failureActions.actions.map((a) => ({ Type: a.type, Delay: a.delayMs })),
    },
    'set the service recovery actions (restart on failure)',
  );
  call(
    SERVICE_CONFIG_FAILURE_ACTIONS_FLAG,
    types.SERVICE_FAILURE_ACTIONS_FLAG,
    { fFailureActionsOnNonCrashFailures: reg.failureActionsOnNonCrashFailures ? 1 : 0 },
    'enable recovery actions for non-crash failures',
    true,
  );
}

/** StartServiceW, then waits until the SCM reports it running (or stopped again: a failed start). */
async function startService(name = KVVM_SERVICE_NAME, timeoutMs = START_WAIT_MS): Promise<number> {
  const n = loadNative();
  const started = withService(n, name, (svc) => {
    if (n.StartServiceW(svc, 0, null)) return true;
    const err = n.GetLastError();
    if (err === ERROR_SERVICE_ALREADY_RUNNING) return true;
    throw win32Error('StartServiceW', err, `start the Windows service ${name}`);
  });
  if (!started) throw new KvvmError('service-start', `The Windows service ${name} is not registered.`);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = withService(n, name, (svc) => statusOf(n, svc));
    if (s && s.state === 4 /* SERVICE_RUNNING */) return s.pid;
    if (!s || s.state === SERVICE_STOPPED) {
      throw new KvvmError('service-start', `The Windows service ${name} stopped right after starting (exit code ${s?.win32ExitCode ?? '?'}/${s?.serviceExitCode ?? '?'}).`, {
        fix: "Read kvvm-windows-service.log and kvvm-service.out in the extension's log folder.",
      });
    }
    if (performance.now() >= deadline) {
      throw new KvvmError('service-start', `The Windows service ${name} did not reach the running state within ${timeoutMs / 1000} s.`, {
        fix: "Read kvvm-windows-service.log in the extension's log folder; check the System event log (Service Control Manager).",
      });
    }
    await delay(200);
  }
}

/** How long the SCM gets to notice a terminated host and report SERVICE_STOPPED. */
const KILL_WAIT_MS = 10_000;

function setStartType(name: string, startType: number): void {
  const n = loadNative();
  withService(n, name, (svc) => {
    if (!n.ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, startType, SERVICE_NO_CHANGE, null, null, null, null, null, null, null)) {
      throw win32Error('ChangeServiceConfigW', n.GetLastError(), `set the start type of the Windows service ${name}`);
    }
  });
}

/**
 * ControlService(STOP), then waits for SERVICE_STOPPED; after the timeout the host process is terminated and the
 * wait goes on until the SCM reports the service stopped, so a start that follows never finds it still running.
 */
async function stopService(name: string, timeoutMs: number, pollMs = 200): Promise<StopResult> {
  const n = loadNative();
  const first = withService(n, name, (svc) => {
    const s = statusOf(n, svc);
    if (s.state === SERVICE_STOPPED) return { ...s, sent: false };
    const out: Record<string, number> = {};
    if (!n.ControlService(svc, SERVICE_CONTROL_STOP, out)) {
      const err = n.GetLastError();
      if (err === ERROR_SERVICE_NOT_ACTIVE) return { ...s, sent: false };
      // CANNOT_ACCEPT_CTRL: already stopping (or still starting); wait for it like for any other stop.
      if (err !== ERROR_SERVICE_CANNOT_ACCEPT_CTRL) throw win32Error('ControlService', err, `stop the Windows service ${name}`);
    }
    return { ...s, sent: true };
  });
  if (!first || !first.sent) return 'not-running';
  if (await waitForStopped(n, name, timeoutMs, pollMs)) return 'stopped';
  const s = withService(n, name, (svc) => statusOf(n, svc));
  if (s && s.pid > 0) {
    try {
      process.kill(s.pid); // TerminateProcess; the child notices its IPC channel closing and stops too
    } catch {
      // gone meanwhile
    }
  }
  if (!(await waitForStopped(n, name, KILL_WAIT_MS, pollMs))) {
    throw new KvvmError('service-stop', `The Windows service ${name} is not stopped ${KILL_WAIT_MS / 1000} s after its host process was terminated.`, {
      fix: 'Check the System event log (Service Control Manager) and stop the service with "sc.exe stop kvvm".',
    });
  }
  return 'killed';
}

/** Polls the SCM until the service is stopped (or gone); false when the time runs out first. */
async function waitForStopped(n: Native, name: string, timeoutMs: number, pollMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = withService(n, name, (svc) => statusOf(n, svc));
    if (!s || s.state === SERVICE_STOPPED) return true;
    if (performance.now() >= deadline) return false;
    await delay(pollMs);
  }
}

/** DeleteService (the SCM removes it once the last handle is closed); absent is not an error. */
export function deleteService(name = KVVM_SERVICE_NAME): 'deleted' | 'absent' {
  const n = loadNative();
  const done = withService(n, name, (svc) => {
    if (!n.DeleteService(svc)) {
      const err = n.GetLastError();
      if (err !== ERROR_SERVICE_MARKED_FOR_DELETE) throw win32Error('DeleteService', err, `delete the Windows service ${name}`);
    }
    return true;
  });
  return done ? 'deleted' : 'absent';
}

/** The service, when it is registered AND belongs to this extension folder (an upgrade may have handed it on). */
function ownService(pidFile: string): ServiceState | undefined {
  const s = queryService();
  return s && ownsService(s.binaryPathName, launchFileFor(pidFile)) ? s : undefined;
}

export const windowsSupervisor: Supervisor = {
  async startDetached(options: StartDetachedOptions) {
    const launchFile = launchFileFor(options.pidFile);
    const logFile = options.logFile ?? join(options.cwd, 'kvvm-service.out');
    const spec: LaunchSpec = {
      version: 1,
      serviceName: KVVM_SERVICE_NAME,
      command: options.command,
      args: options.args,
      env: serviceEnvironment(options.env),
      cwd: options.cwd,
      outputFile: logFile,
      logFolder: dirname(logFile),
    };
    await writeFileAtomic(launchFile, `${JSON.stringify(spec, null, 2)}\n`);
    // args is [<cli.js>, 'service'] (node.exe, and the single executable whose launcher sets argv[1] to cli.js too).
    const cliScript = options.args.length > 1 ? options.args[0] : undefined;
    registerService(serviceRegistration({ execPath: options.command, cliScript, launchFile }));
    const pid = await startService();
    await writePidFile(options.pidFile, {
      pid,
      markerKind: 'none',
      startMarker: undefined,
      command: `service ${KVVM_SERVICE_NAME}`,
      startedAt: (options.now?.() ?? new Date()).toISOString(),
    });
    return { pid };
  },

  async isRunning(pidFile) {
    const s = ownService(pidFile);
    return s && s.state !== SERVICE_STOPPED ? { running: true, pid: s.pid } : { running: false };
  },

  async stopProcess(pidFile, options: StopOptions) {
    const s = ownService(pidFile);
    // Disabled means disabled across a reboot too: the agent does not call disable again after a restart, so an
    // auto-start service would sync certificates until the next enable (which registers it as auto-start again).
    if (s && s.startType !== SERVICE_DEMAND_START) setStartType(KVVM_SERVICE_NAME, SERVICE_DEMAND_START);
    const result = s ? await stopService(KVVM_SERVICE_NAME, options.timeoutMs, options.pollMs) : 'not-running';
    await removePidFile(pidFile);
    return result;
  },

  async remove(pidFile) {
    const removed = removeWindowsService(pidFile);
    await rm(launchFileFor(pidFile), { force: true });
    return `Windows service ${removed === 'deleted' ? 'deleted' : removed === 'absent' ? 'was not registered' : 'belongs to another version; kept'}`;
  },
};

/** Uninstall: stop (done by the caller) and delete the service when it is this extension folder's. */
function removeWindowsService(pidFile: string): 'deleted' | 'absent' | 'not-ours' {
  const s = queryService();
  if (!s) return 'absent';
  if (!ownsService(s.binaryPathName, launchFileFor(pidFile))) return 'not-ours';
  return deleteService();
}

/** The service as the "kvvm" Windows service. The SCM serialises its service, and there is no flock: commands run as they come. */
export function windowsExtensionService(files: ExtensionServiceFiles): ExtensionService {
  const start: ExtensionService['start'] = ({ kvvmCommand: [command, ...script], env, cwd }) => {
    if (command === undefined) throw new Error('kvvm: no command to run the service with');
    return windowsSupervisor.startDetached({ command, args: [...script, 'service'], env, cwd, pidFile: files.pidFile, logFile: files.serviceOutput });
  };
  const stop: ExtensionService['stop'] = (timeoutMs) => windowsSupervisor.stopProcess(files.pidFile, { timeoutMs });
  return {
    isRunning: () => windowsSupervisor.isRunning(files.pidFile),
    start,
    stop,
    replace: async (launch, timeoutMs, afterStop) => {
      await stop(timeoutMs);
      await afterStop();
      return start(launch);
    },
    // The registration goes when it is this version's (an upgrade may have handed it on).
    unregister: () => windowsSupervisor.remove(files.pidFile),
    oneCommandAtATime: (fn) => fn(),
  };
}
