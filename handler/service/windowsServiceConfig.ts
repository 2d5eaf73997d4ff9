/**
 * The Windows service kvvm registers, as PURE data: every argument the Service Control Manager calls receive
 * (CreateServiceW/ChangeServiceConfigW, ChangeServiceConfig2W failure actions, SetServiceStatus) is computed here so
 * tests assert it on Linux; windowsService.ts and windowsServiceHost.ts only make the calls.
 *
 * Shape of the service (see docs/windows.md): one SERVICE_WIN32_OWN_PROCESS service "kvvm", LocalSystem,
 * SERVICE_AUTO_START, restarted by the SCM on failure. Its binary is kvvm's hidden `windows-service-host` command
 * (windowsServiceHost.ts; node.exe cli.js, or the single executable kvvm.exe), a small host that talks to the SCM and
 * runs the ordinary `kvvm service` as a child with the environment enable captured in a launch file: the SCM starts services with the machine environment only (Wine ignores the service's registry `Environment`
 * value, measured), and NODE_EXTRA_CA_CERTS and friends must be in a Node process's environment from its start.
 */
import {
  ERROR_CALL_NOT_IMPLEMENTED,
  ERROR_SERVICE_SPECIFIC_ERROR,
  NO_ERROR,
  SC_ACTION_RESTART,
  SERVICE_ACCEPT_SHUTDOWN,
  SERVICE_ACCEPT_STOP,
  SERVICE_AUTO_START,
  SERVICE_CONTROL_INTERROGATE,
  SERVICE_CONTROL_SHUTDOWN,
  SERVICE_CONTROL_STOP,
  SERVICE_ERROR_NORMAL,
  SERVICE_RUNNING,
  SERVICE_START_PENDING,
  SERVICE_STOPPED,
  SERVICE_STOP_PENDING,
  SERVICE_WIN32_OWN_PROCESS,
} from '../platform/win32/native.js';

import { serviceOverrideVariables } from '../overrides.js';

export const KVVM_SERVICE_NAME = 'kvvm';
/** How long the service waits for `kvvm service` to finish its current step after a stop request. */
export const SERVICE_STOP_WAIT_MS = 25_000;
/** File next to the pid file in the extension folder: what the service host starts (launchSpec). */
export const LAUNCH_FILE = 'kvvm-service.launch.json';

/** What the service host runs: written by enable, read by the host at every (re)start, including boot. */
export interface LaunchSpec {
  version: 1;
  serviceName: string;
  command: string;
  args: string[];
  /** Added to the machine environment the SCM gives the host (allow-listed: serviceEnvironment). */
  env: Record<string, string>;
  cwd: string;
  /** The child's stdout/stderr are appended here (crashes before the logger starts). */
  outputFile: string;
  /** The host's own log lines go to <logFolder>/kvvm-windows-service.log. */
  logFolder: string;
}

/**
 * The variables carried from enable into the service. Not the whole environment: the SCM supplies the machine's
 * own (PATH, SystemRoot, ...) and the launch file must not copy whatever else the agent's process happened to have.
 * Of the KVVM_* variables only the known ones the service reads, when set in the environment that ran enable (the
 * agent sets none: someone put them there on purpose), are carried (overrides.ts); the service logs each at start.
 */
const CARRIED = /^(?:ConfigSequenceNumber|AZURE_[A-Z0-9_]+|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|NO_PROXY|IDENTITY_ENDPOINT|IDENTITY_HEADER|IMDS_ENDPOINT|MSI_ENDPOINT|MSI_SECRET)$/i;

export function serviceEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && CARRIED.test(key)) out[key] = value;
  return { ...out, ...serviceOverrideVariables(env) };
}

/**
 * One argument quoted for CreateProcess/CommandLineToArgvW. Paths with a double quote cannot be expressed in a
 * service's binary path (and no Windows path contains one); trailing backslashes are doubled before the closing quote.
 */
export function quoteWindowsArg(arg: string): string {
  if (arg.includes('"')) throw new Error(`a service command-line argument cannot contain a double quote: ${arg}`);
  return `"${arg.replace(/(\\+)$/, '$1$1')}"`;
}

export interface ServiceRegistration {
  serviceName: string;
  displayName: string;
  description: string;
  /** lpBinaryPathName: the command line the SCM runs. */
  binaryPathName: string;
  serviceType: number;
  startType: number;
  errorControl: number;
  /** lpServiceStartName: null = LocalSystem (machine stores, machine keys). */
  account: null;
  failureActions: { resetPeriodS: number; actions: Array<{ type: number; delayMs: number }> };
  /** SERVICE_FAILURE_ACTIONS_FLAG: also restart when the service reports SERVICE_STOPPED with an error code. */
  failureActionsOnNonCrashFailures: boolean;
}

export interface RegistrationInput {
  /** process.execPath of the enabling process: node.exe, or the packaged single executable bin\\kvvm.exe. */
  execPath: string;
  /** The CLI script node runs (lib\\handler\\cli.js); ignored for a single executable, which finds it itself. */
  cliScript: string | undefined;
  launchFile: string;
}

/** The hidden CLI command the Service Control Manager runs (cli.ts). */
const SERVICE_HOST_COMMAND = 'windows-service-host';

/** True for a plain Node binary (node.exe, node); anything else is taken for kvvm's single executable (SEA). */
export function isNodeBinary(execPath: string): boolean {
  const base = execPath.split(/[\\/]/).pop() ?? '';
  return /^node(?:\.exe)?$/i.test(base);
}

/**
 * The service's command line, argument by argument: `node.exe <cli.js> windows-service-host <launch file>`, or for
 * the single executable `kvvm.exe windows-service-host <launch file>` (its launcher finds ..\\lib\\handler\\cli.js).
 */
export function serviceHostArgv(input: RegistrationInput): string[] {
  if (!isNodeBinary(input.execPath)) return [input.execPath, SERVICE_HOST_COMMAND, input.launchFile];
  if (input.cliScript === undefined) {
    throw new Error(`cannot register the Windows service: ${input.execPath} is a Node binary but the kvvm CLI script is not known`);
  }
  return [input.execPath, input.cliScript, SERVICE_HOST_COMMAND, input.launchFile];
}

/** A service binary path: paths quoted for CommandLineToArgvW, the command word as it is. */
function serviceBinaryPath(argv: readonly string[]): string {
  return argv.map((a) => (a === SERVICE_HOST_COMMAND ? a : quoteWindowsArg(a))).join(' ');
}

export function serviceRegistration(input: RegistrationInput): ServiceRegistration {
  return {
    serviceName: KVVM_SERVICE_NAME,
    displayName: 'kvvm Key Vault certificate sync',
    description:
      'Keeps Azure Key Vault certificates installed in the Windows certificate store (kvvm, the open KeyVault VM extension). Managed by the extension: enable starts it, disable stops it, uninstall removes it.',
    binaryPathName: serviceBinaryPath(serviceHostArgv(input)),
    serviceType: SERVICE_WIN32_OWN_PROCESS,
    startType: SERVICE_AUTO_START,
    errorControl: SERVICE_ERROR_NORMAL,
    account: null,
    // Restart after 10 s, then 60 s, then every 5 min; the failure count resets after a day without failures.
    failureActions: { resetPeriodS: 86_400, actions: [10_000, 60_000, 300_000].map((delayMs) => ({ type: SC_ACTION_RESTART, delayMs })) },
    failureActionsOnNonCrashFailures: true,
  };
}

/** Whether the service registered under our name is this extension folder's (its binary path names our launch file). */
export function ownsService(binaryPathName: string, launchFile: string): boolean {
  return binaryPathName.toLowerCase().includes(launchFile.toLowerCase());
}

export type HostPhase = 'starting' | 'running' | 'stopping' | { stopped: { exitCode: number | null; requested: boolean } };

export interface ServiceStatusArgs {
  dwServiceType: number;
  dwCurrentState: number;
  dwControlsAccepted: number;
  dwWin32ExitCode: number;
  dwServiceSpecificExitCode: number;
  dwCheckPoint: number;
  dwWaitHint: number;
}

/**
 * SetServiceStatus for each phase of the host. A stop nobody asked for with a non-zero exit (or a child that died
 * from a signal/termination: exitCode null) is reported as ERROR_SERVICE_SPECIFIC_ERROR, which with
 * failureActionsOnNonCrashFailures makes the SCM apply the restart actions.
 */
export function serviceStatusFor(phase: HostPhase, checkPoint = 0): ServiceStatusArgs {
  const base = { dwServiceType: SERVICE_WIN32_OWN_PROCESS, dwWin32ExitCode: NO_ERROR, dwServiceSpecificExitCode: 0, dwCheckPoint: 0, dwWaitHint: 0 };
  if (phase === 'starting') return { ...base, dwCurrentState: SERVICE_START_PENDING, dwControlsAccepted: 0, dwCheckPoint: checkPoint, dwWaitHint: 30_000 };
  if (phase === 'running') return { ...base, dwCurrentState: SERVICE_RUNNING, dwControlsAccepted: SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN };
  if (phase === 'stopping') return { ...base, dwCurrentState: SERVICE_STOP_PENDING, dwControlsAccepted: 0, dwCheckPoint: checkPoint, dwWaitHint: SERVICE_STOP_WAIT_MS + 5_000 };
  const { exitCode, requested } = phase.stopped;
  const failed = exitCode === null ? !requested : exitCode !== 0;
  return {
    ...base,
    dwCurrentState: SERVICE_STOPPED,
    dwControlsAccepted: 0,
    dwWin32ExitCode: failed ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR,
    dwServiceSpecificExitCode: failed ? (exitCode ?? 1) >>> 0 : 0,
  };
}

/** What the control handler does with a control code, and what it returns to the SCM. */
export function controlAction(control: number): { action: 'stop' | 'report' | 'ignore'; result: number } {
  if (control === SERVICE_CONTROL_STOP || control === SERVICE_CONTROL_SHUTDOWN) return { action: 'stop', result: NO_ERROR };
  if (control === SERVICE_CONTROL_INTERROGATE) return { action: 'report', result: NO_ERROR };
  return { action: 'ignore', result: ERROR_CALL_NOT_IMPLEMENTED };
}

/** The message the host sends `kvvm service` over the IPC channel to stop after its current step. */
export const STOP_MESSAGE = 'kvvm:stop';
