/**
 * The running service as the agent commands see it, one shape for both platforms: on Windows the "kvvm"
 * Windows service (the SCM restarts and serialises it), elsewhere the supervised worker of posixService.ts.
 */
import { describeError } from '../errors.js';
import { isServiceRunning, startSupervisedService, stopService, type PosixServiceFiles } from '../service/posixService.js';
import { overridesFrom } from '../overrides.js';
import { restartPolicyFor } from '../service/restartLoop.js';
import type { StopResult } from '../service/supervisor.js';
import { windowsSupervisor } from '../service/windowsService.js';
import { isSystemdServiceRunning, removeSystemdUnit, runSystemctl, startSystemdService, stopSystemdService, systemdBooted } from '../service/systemdService.js';
import { unitEnvironment } from '../service/systemdUnit.js';
import { reportStatus, type HandlerContext } from './context.js';

const SERVICE_STOP_TIMEOUT_MS = 30_000;

export interface ServiceControl {
  isRunning(): Promise<{ running: boolean; pid?: number }>;
  /** Starts the service for sequence number `seq`; on failure the status says so and the error is rethrown. */
  start(seq: number): Promise<{ pid: number }>;
  /** Resolves when no service is left; throws otherwise. */
  stop(): Promise<StopResult>;
  /** uninstall: what registers the service with the system (the systemd unit) goes too. */
  unregister(): Promise<string | undefined>;
}

function posixServiceFiles(ctx: HandlerContext): PosixServiceFiles {
  return { supervisorPidFile: ctx.paths.supervisorPidFile, workerPidFile: ctx.paths.pidFile, serviceLock: ctx.paths.serviceLock, outputFile: ctx.paths.serviceOutput };
}

/**
 * Linux with systemd as PID 1 runs the supervisor as the `akvvm_service` unit; other POSIX systems (and
 * containers, and CI) start it detached. KVVM_INIT=none forces the latter (never needed by operators).
 */
export function serviceControlFor(ctx: HandlerContext): ServiceControl {
  const windows = ctx.host.platform === 'win32';
  const overrides = overridesFrom(ctx.host.env);
  const systemd = !windows && ctx.host.platform === 'linux' && !overrides.initNone && systemdBooted();
  const files = posixServiceFiles(ctx);
  return {
    isRunning: () => (windows ? windowsSupervisor.isRunning(ctx.paths.pidFile) : systemd ? isSystemdServiceRunning(runSystemctl) : isServiceRunning(files)),
    stop: () =>
      windows
        ? windowsSupervisor.stopProcess(ctx.paths.pidFile, { timeoutMs: SERVICE_STOP_TIMEOUT_MS })
        : systemd
          ? stopSystemdService(files, runSystemctl, SERVICE_STOP_TIMEOUT_MS)
          : stopService(files, { timeoutMs: SERVICE_STOP_TIMEOUT_MS }),
    // Windows: the service registration goes (when it is this version's: an upgrade may have handed it on).
    unregister: async () =>
      windows ? windowsSupervisor.remove(ctx.paths.pidFile) : systemd ? `systemd unit ${await removeSystemdUnit(ctx.handlerEnv.extensionFolder, runSystemctl)}` : undefined,
    async start(seq) {
      const kvvm = ctx.host.scriptPath ? [ctx.host.execPath, ctx.host.scriptPath] : [ctx.host.execPath];
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(ctx.host.env)) if (v !== undefined) env[k] = v;
      env['AZURE_GUEST_AGENT_EXTENSION_PATH'] = ctx.handlerEnv.extensionFolder;
      env['ConfigSequenceNumber'] = String(seq);
      const cwd = ctx.handlerEnv.extensionFolder;
      try {
        if (windows) {
          return await windowsSupervisor.startDetached({
            command: ctx.host.execPath,
            args: [...kvvm.slice(1), 'service'],
            env,
            cwd,
            pidFile: ctx.paths.pidFile,
            logFile: ctx.paths.serviceOutput,
          });
        }
        const policy = restartPolicyFor(overrides.restartBaseMs);
        if (systemd) {
          const version = ctx.host.env['AZURE_GUEST_AGENT_EXTENSION_VERSION'] ?? '';
          return await startSystemdService({ files, run: runSystemctl, unit: { extensionFolder: cwd, version, kvvmCommand: kvvm, env: unitEnvironment(env), policy } });
        }
        return await startSupervisedService({ files, kvvmCommand: kvvm, env, cwd, policy });
      } catch (err) {
        await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message: `Could not start the service: ${describeError(err)}` }, seq);
        throw err;
      }
    },
  };
}
