/**
 * The process the Service Control Manager starts for the "kvvm" service: the hidden CLI command
 * `kvvm windows-service-host <launch file>` (cli.ts), as `node.exe cli.js windows-service-host …` or, packaged,
 * `kvvm.exe windows-service-host …` (windowsServiceConfig.serviceHostArgv).
 *
 * It talks to the SCM (StartServiceCtrlDispatcherW → ServiceMain → RegisterServiceCtrlHandlerExW → SetServiceStatus)
 * and runs the ordinary `kvvm service` as a child process with the environment enable captured (LaunchSpec). Why a
 * child: the SCM gives a service the machine environment only, and variables such as NODE_EXTRA_CA_CERTS act only
 * at a Node process's start; and the sync service stays the same program on every platform.
 *
 * Threads: StartServiceCtrlDispatcherW blocks until the service stops, so it runs on a koffi worker thread
 * (`.async`); the SCM calls ServiceMain and the control handler on its own threads, and koffi queues those callbacks
 * onto this (main) thread's event loop, which stays free. Measured under Wine 8 and the same on Windows.
 *
 * Stop: SERVICE_CONTROL_STOP/SHUTDOWN → STOP_PENDING, "kvvm:stop" over the child's IPC channel (the service
 * finishes its current step), TerminateProcess after SERVICE_STOP_WAIT_MS. The child also stops when the channel
 * closes, so a host killed by the SCM never leaves an orphan syncing certificates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { describeError } from '../errors.js';
import { loadNative, type Handle } from '../platform/win32/native.js';
import { createLogger, type KvvmLogger } from './logger.js';
import { controlAction, serviceStatusFor, SERVICE_STOP_WAIT_MS, STOP_MESSAGE, type HostPhase, type LaunchSpec } from './windowsServiceConfig.js';

export function readLaunchSpec(file: string): LaunchSpec {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as LaunchSpec;
  if (spec.version !== 1 || typeof spec.command !== 'string' || !Array.isArray(spec.args)) throw new Error(`${file} is not a kvvm launch file`);
  return spec;
}

/** `kvvm windows-service-host <launch file>`: returns when the service stops (the process exit code). */
export async function runServiceHost(launchFile: string): Promise<number> {
  const spec = readLaunchSpec(launchFile);
  const log = createLogger({ logFolder: spec.logFolder, name: 'windows-service' });
  try {
    return await dispatch(spec, log);
  } catch (err) {
    log.error(`service host failed: ${describeError(err)}`);
    return 1;
  } finally {
    await log.close();
  }
}

function dispatch(spec: LaunchSpec, log: KvvmLogger): Promise<number> {
  const n = loadNative();
  const { koffi, types } = n;
  let statusHandle: Handle | null = null;
  let phase: HostPhase = 'starting';
  let checkPoint = 0;
  let child: ChildProcess | undefined;
  let stopRequested = false;
  let killTimer: NodeJS.Timeout | undefined;

  const report = (next: HostPhase): void => {
    phase = next;
    if (statusHandle === null) return;
    if (!n.SetServiceStatus(statusHandle, serviceStatusFor(next, ++checkPoint))) log.warn(`SetServiceStatus failed (${n.GetLastError()})`);
  };

  const requestStop = (why: string): void => {
    if (stopRequested) return;
    stopRequested = true;
    log.info(`${why}: stopping the certificate service`);
    report('stopping');
    if (!child || child.exitCode !== null) return;
    if (child.connected) child.send(STOP_MESSAGE);
    killTimer = setTimeout(() => {
      log.warn(`the certificate service did not stop within ${SERVICE_STOP_WAIT_MS / 1000} s; terminating it`);
      child?.kill();
    }, SERVICE_STOP_WAIT_MS);
  };

  const handler = koffi.register((control: number) => {
    const { action, result } = controlAction(control);
    if (action === 'stop') requestStop(`service control ${control}`);
    else if (action === 'report') report(phase);
    return result;
  }, types.LPHANDLER_FUNCTION_EX);

  const startChild = (): void => {
    const out = openSync(spec.outputFile, 'a');
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: { ...process.env, ...spec.env },
        stdio: ['ignore', out, out, 'ipc'],
        windowsHide: true,
      });
    } finally {
      closeSync(out);
    }
    child.once('spawn', () => {
      log.info(`certificate service started (pid ${child?.pid ?? '?'}): ${[spec.command, ...spec.args].join(' ')}`);
      if (!stopRequested) report('running');
    });
    child.once('error', (err) => log.error(`cannot start the certificate service: ${err.message}`));
    child.once('exit', (code, signal) => {
      if (killTimer) clearTimeout(killTimer);
      log.info(`certificate service exited (${code === null ? `signal ${signal ?? '?'}` : `code ${code}`})${stopRequested ? ' after a stop request' : ''}`);
      report({ stopped: { exitCode: code, requested: stopRequested } });
    });
  };

  const main = koffi.register((_argc: number, _argv: unknown) => {
    statusHandle = n.RegisterServiceCtrlHandlerExW(spec.serviceName, handler, null) as Handle | null;
    if (statusHandle === null) {
      log.error(`RegisterServiceCtrlHandlerExW failed (${n.GetLastError()})`);
      return;
    }
    report('starting');
    // ServiceMain may return once the work is under way (the dispatcher keeps serving controls); the child is
    // started from the event loop, outside this callback.
    setImmediate(startChild);
  }, types.LPSERVICE_MAIN_FUNCTIONW);

  log.info(`service host starting for ${spec.serviceName} (pid ${process.pid})`);
  return new Promise<number>((done) => {
    n.StartServiceCtrlDispatcherW.async(
      [
        { lpServiceName: spec.serviceName, lpServiceProc: main },
        { lpServiceName: null, lpServiceProc: null },
      ],
      (err: unknown, ok: unknown) => {
        koffi.unregister(main);
        koffi.unregister(handler);
        if (err) {
          log.error(`StartServiceCtrlDispatcherW failed: ${describeError(err)}`);
          done(1);
        } else if (!ok) {
          // Its last error is on the worker thread; the usual cause is ERROR_FAILED_SERVICE_CONTROLLER_CONNECT.
          log.error(
            'StartServiceCtrlDispatcherW failed: this program only runs as the kvvm Windows service, started by the Service Control Manager; to run the certificate service in a console use `kvvm service`',
          );
          done(1);
        } else {
          done(typeof phase === 'object' && phase.stopped.exitCode !== null ? phase.stopped.exitCode : 0);
        }
      },
    );
  });
}
