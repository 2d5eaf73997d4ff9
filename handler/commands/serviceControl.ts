/**
 * The running service as the agent commands see it, one shape whatever runs it: the implementation is chosen
 * from the injected platform by service/supervisorFor.ts (extensionServiceFor), so no command branches on it.
 */
import { describeError } from '../errors.js';
import { overridesFrom } from '../overrides.js';
import { restartPolicyFor } from '../service/restartLoop.js';
import type { StopResult } from '../service/supervisor.js';
import { extensionServiceFor } from '../service/supervisorFor.js';
import { reportStatus, type HandlerContext } from './context.js';

const SERVICE_STOP_TIMEOUT_MS = 30_000;

export interface ServiceControl {
  isRunning(): Promise<{ running: boolean; pid?: number }>;
  /** Resolves when no service is left; throws otherwise. */
  stop(): Promise<StopResult>;
  /**
   * enable: stops what runs, runs `afterStop` (the status it reports), starts the service for sequence number
   * `seq` (ExtensionService.replace). On failure the status says so and the error is rethrown.
   */
  replace(seq: number, afterStop: () => Promise<void>): Promise<{ pid: number }>;
  /** uninstall: what registers the service with the system (the systemd unit, the Windows service) goes too. */
  unregister(): Promise<string | undefined>;
  /** Runs one agent command at a time for this extension (POSIX: flock; Windows: the SCM serialises). */
  oneCommandAtATime<T>(fn: () => Promise<T>): Promise<T>;
}

export function serviceControlFor(ctx: HandlerContext): ServiceControl {
  const overrides = overridesFrom(ctx.host.env);
  const service = extensionServiceFor(
    ctx.host.platform,
    { extensionFolder: ctx.handlerEnv.extensionFolder, ...ctx.paths },
    { policy: restartPolicyFor(overrides.restartBaseMs), initNone: overrides.initNone },
  );
  const launch = (seq: number) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.host.env)) if (v !== undefined) env[k] = v;
    env['AZURE_GUEST_AGENT_EXTENSION_PATH'] = ctx.handlerEnv.extensionFolder;
    env['ConfigSequenceNumber'] = String(seq);
    return {
      kvvmCommand: ctx.host.scriptPath ? [ctx.host.execPath, ctx.host.scriptPath] : [ctx.host.execPath],
      env,
      cwd: ctx.handlerEnv.extensionFolder,
      version: ctx.host.env['AZURE_GUEST_AGENT_EXTENSION_VERSION'] ?? '',
    };
  };
  const reportingStartFailure = async (seq: number, starting: Promise<{ pid: number }>): Promise<{ pid: number }> => {
    try {
      return await starting;
    } catch (err) {
      await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message: `Could not start the service: ${describeError(err)}` }, seq);
      throw err;
    }
  };
  return {
    isRunning: () => service.isRunning(),
    stop: () => service.stop(SERVICE_STOP_TIMEOUT_MS),
    unregister: () => service.unregister(),
    oneCommandAtATime: (fn) => service.oneCommandAtATime(fn),
    replace: (seq, afterStop) => reportingStartFailure(seq, service.replace(launch(seq), SERVICE_STOP_TIMEOUT_MS, afterStop)),
  };
}
