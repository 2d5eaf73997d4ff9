/**
 * The running service as the agent commands see it, one shape for both platforms: on Windows the "kvvm"
 * Windows service (the SCM restarts and serialises it), elsewhere the supervised worker of posixService.ts.
 */
import { describeError } from '../errors.js';
import { isServiceRunning, startSupervisedService, stopService, type PosixServiceFiles } from '../service/posixService.js';
import { restartPolicyFromEnv } from '../service/restartLoop.js';
import { isRunning, startDetached, stopProcess, type StopResult } from '../service/supervisor.js';
import { reportStatus, type HandlerContext } from './context.js';

export const SERVICE_STOP_TIMEOUT_MS = 30_000;

export interface ServiceControl {
  isRunning(): Promise<{ running: boolean; pid?: number }>;
  /** Starts the service for sequence number `seq`; on failure the status says so and the error is rethrown. */
  start(seq: number): Promise<{ pid: number }>;
  /** Resolves when no service is left; throws otherwise. */
  stop(): Promise<StopResult>;
}

export function posixServiceFiles(ctx: HandlerContext): PosixServiceFiles {
  return { supervisorPidFile: ctx.paths.supervisorPidFile, workerPidFile: ctx.paths.pidFile, serviceLock: ctx.paths.serviceLock, outputFile: ctx.paths.serviceOutput };
}

export function serviceControlFor(ctx: HandlerContext): ServiceControl {
  const windows = ctx.host.platform === 'win32';
  const files = posixServiceFiles(ctx);
  return {
    isRunning: () => (windows ? isRunning(ctx.paths.pidFile) : isServiceRunning(files)),
    stop: () => (windows ? stopProcess(ctx.paths.pidFile, { timeoutMs: SERVICE_STOP_TIMEOUT_MS }) : stopService(files, { timeoutMs: SERVICE_STOP_TIMEOUT_MS })),
    async start(seq) {
      const kvvm = ctx.host.scriptPath ? [ctx.host.execPath, ctx.host.scriptPath] : [ctx.host.execPath];
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(ctx.host.env)) if (v !== undefined) env[k] = v;
      env['AZURE_GUEST_AGENT_EXTENSION_PATH'] = ctx.handlerEnv.extensionFolder;
      env['ConfigSequenceNumber'] = String(seq);
      const cwd = ctx.handlerEnv.extensionFolder;
      try {
        if (windows) {
          return await startDetached({ command: ctx.host.execPath, args: [...kvvm.slice(1), 'service'], env, cwd, pidFile: ctx.paths.pidFile, logFile: ctx.paths.serviceOutput });
        }
        return await startSupervisedService({ files, kvvmCommand: kvvm, env, cwd, policy: restartPolicyFromEnv(ctx.host.env) });
      } catch (err) {
        await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message: `Could not start the service: ${describeError(err)}` }, seq);
        throw err;
      }
    },
  };
}
