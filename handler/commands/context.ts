/**
 * What every agent-driven command starts from: the host (env, paths, clock, output) and the handler
 * environment the agent wrote. Host access comes in through `CommandHost` so tests run commands in-process.
 */
import { writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { detectHandlerVersion, findHandlerEnvironment, type HandlerEnvironment } from '../protocol/handlerEnvironment.js';
import { profileFor, type BehaviourProfile } from '../settings/profile.js';
import { packageVersion as packagedVersion } from '../version.js';
import { resolveSequenceNumber } from '../protocol/sequence.js';
import { readHandlerSettings, type ReadHandlerSettingsOptions } from '../protocol/settingsFile.js';
import { decryptProtectedSettingsWindows } from '../protocol/protectedSettingsWindows.js';
import { writeStatus, type HandlerStatusReport } from '../protocol/status.js';
import type { KvvmConfig } from '../settings/config.js';
import { KvvmError } from '../errors.js';
import type { Reason } from '../reasons.js';
import { overridesFrom } from '../overrides.js';
import { writeEvent } from '../protocol/events.js';
import { executableExists } from '../consumers/executable.js';
import { mapStrings, ProtectedValues } from '../redaction.js';
import { appendLogRecord } from '../service/logFile.js';

export type Env = Record<string, string | undefined>;

export interface CommandHost {
  env: Env;
  /** The Node binary (or the single executable) and the script that runs this CLI. */
  execPath: string;
  scriptPath: string | undefined;
  cwd: string;
  platform: NodeJS.Platform;
  now: () => Date;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export function processHost(): CommandHost {
  return {
    env: process.env,
    execPath: process.execPath,
    scriptPath: process.argv[1],
    cwd: process.cwd(),
    platform: process.platform,
    now: () => new Date(),
    stdout: directWriter(1, () => process.stdout),
    stderr: directWriter(2, () => process.stderr),
  };
}

/**
 * Writes to fd 1 or 2 with write(2) directly: what process.stdout/stderr do on Linux for the agent's pipes and for
 * files anyway (synchronously), without building the stream (a net.Socket for a pipe; enable 93.9 -> 86.2 ms in an
 * A/B of 31 interleaved runs, bench/ figure 3). A descriptor that refuses the text (EAGAIN: a non-blocking pipe
 * that is full; or any other error) hands what is left of it and everything after it to Node's stream, which
 * queues it or reports the error as it did before, so nothing is lost or reordered.
 */
export function directWriter(fd: number, stream: () => { write(data: string | Uint8Array): unknown }): (text: string) => void {
  let direct = true;
  return (text) => {
    if (!direct) {
      stream().write(text);
      return;
    }
    const data = Buffer.from(text);
    let written = 0;
    try {
      while (written < data.length) written += writeSync(fd, data, written);
    } catch {
      direct = false;
      stream().write(data.subarray(written));
    }
  };
}

export interface HandlerContext {
  host: CommandHost;
  handlerEnv: HandlerEnvironment;
  seq: number;
  /** Handler name for status files: the agent's name without the publisher, e.g. KeyVaultForLinux. */
  handlerName: string;
  paths: ServicePaths;
  /**
   * Values of the protected settings once loadConfig has decrypted them: every status, event and log line of this
   * process goes through `protectedValues.apply`, so they never reach those files (invalid values included).
   */
  protectedValues: ProtectedValues;
}

interface ServicePaths {
  pidFile: string;
  /** Output of the detached service process (crashes before the logger starts land here). */
  serviceOutput: string;
  /** Folder holding the extension's own state (carried over by update, removed by uninstall). */
  stateDir: string;
  /** flock'd by enable, disable and uninstall for their whole run: one agent command at a time. */
  commandLock: string;
  /** flock'd by the running service's supervisor for its whole life: one service per extension. */
  serviceLock: string;
  /** The supervisor's own pid record (kvvm-service.pid names the process that syncs). */
  supervisorPidFile: string;
}

function servicePaths(handlerEnv: HandlerEnvironment): ServicePaths {
  return {
    pidFile: join(handlerEnv.extensionFolder, 'kvvm-service.pid'),
    serviceOutput: join(handlerEnv.logFolder, 'kvvm-service.out'),
    stateDir: join(handlerEnv.extensionFolder, 'state'),
    commandLock: join(handlerEnv.extensionFolder, 'kvvm-command.lock'),
    serviceLock: join(handlerEnv.extensionFolder, 'kvvm-service.lock'),
    supervisorPidFile: join(handlerEnv.extensionFolder, 'kvvm-supervisor.pid'),
  };
}

export async function loadHandlerContext(host: CommandHost, options: { needSequence: boolean }): Promise<HandlerContext> {
  const findOptions: Parameters<typeof findHandlerEnvironment>[0] = { env: host.env, execPath: host.execPath, cwd: host.cwd };
  if (host.scriptPath !== undefined) findOptions.scriptPath = host.scriptPath;
  const handlerEnv = await findHandlerEnvironment(findOptions);
  let seq: number;
  if (options.needSequence) seq = await resolveSequenceNumber(handlerEnv.configFolder, host.env);
  else {
    try {
      seq = await resolveSequenceNumber(handlerEnv.configFolder, host.env);
    } catch {
      seq = 0; // disable/uninstall must work even when the settings are gone
    }
  }
  return { host, handlerEnv, seq, handlerName: handlerName(handlerEnv.name), paths: servicePaths(handlerEnv), protectedValues: new ProtectedValues() };
}

function handlerName(fullName: string): string {
  const parts = fullName.split('.');
  return parts[parts.length - 1] || fullName;
}

export type SettingsDecryptor = (base64: string, thumbprint: string) => Promise<Record<string, unknown>>;

/** Windows: the agent's transport certificate and its key are in LocalMachine\My (protectedSettingsWindows.ts). */
const windowsDecryptor: SettingsDecryptor = (base64, thumbprint) => decryptProtectedSettingsWindows(base64, thumbprint, { location: 'LocalMachine' });

/**
 * How kvvm reads the agent's <seq>.settings, for the handler commands and `kvvm doctor` alike. Linux: the agent's
 * <THUMB>.crt/.prv in /var/lib/waagent (the extension folder's parent); Windows: the transport certificate in
 * LocalMachine\My. `windowsDecrypt` replaces the Windows decryption only where it cannot run (tests on Linux).
 */
export function settingsReadOptions(o: {
  platform: NodeJS.Platform;
  env: Env;
  extensionFolder: string;
  windowsDecrypt?: SettingsDecryptor | undefined;
}): ReadHandlerSettingsOptions {
  return {
    protectedSettingsKeyDir: overridesFrom(o.env).waagentDir ?? dirname(o.extensionFolder),
    decrypt: o.platform === 'win32' ? (o.windowsDecrypt ?? windowsDecryptor) : undefined,
  };
}

function platformOf(ctx: HandlerContext): 'linux' | 'win32' {
  return ctx.host.platform === 'win32' ? 'win32' : 'linux';
}

/** The 3.x or 4.x rules, chosen by the version the agent runs this handler as (profile.ts). */
function behaviourProfile(ctx: HandlerContext): BehaviourProfile {
  const hv = detectHandlerVersion({ env: ctx.host.env, extensionFolder: ctx.handlerEnv.extensionFolder, packagedVersion });
  return profileFor(hv.version, platformOf(ctx), hv.source);
}

export type ConfigResult = { ok: true; config: KvvmConfig } | { ok: false; message: string; reason: Reason };

export async function loadConfig(ctx: HandlerContext, seq = ctx.seq): Promise<ConfigResult> {
  let raw: unknown;
  try {
    const read = await readHandlerSettings(
      ctx.handlerEnv.configFolder,
      seq,
      settingsReadOptions({ platform: ctx.host.platform, env: ctx.host.env, extensionFolder: ctx.handlerEnv.extensionFolder }),
    );
    ctx.protectedValues.add(read.protectedSettings);
    raw = read.settings;
  } catch (err) {
    if (err instanceof KvvmError) return { ok: false, message: err.describe(), reason: err.reason };
    throw err;
  }
  // Loaded here, not at the top: the service records its pid from this module before it needs the settings
  // validator (serviceWorker.ts), and ajv + winston are a good part of a Node start's worth of loading.
  const { formatProblems, parseSettings } = await import('../settings/index.js');
  const parsed = parseSettings(raw, { platform: platformOf(ctx), env: ctx.host.env, profile: behaviourProfile(ctx), executableExists });
  if (parsed.ok) return { ok: true, config: parsed.config };
  return {
    ok: false,
    reason: parsed.problems[0]?.reason ?? 'settings-invalid',
    // Problems quote the values they reject; values from protectedSettings must not be quoted anywhere.
    message: ctx.protectedValues.apply(`The extension settings are not valid: ${formatProblems(parsed.problems)}`),
  };
}

export async function reportStatus(ctx: HandlerContext, report: HandlerStatusReport, seq = ctx.seq): Promise<void> {
  await writeStatus(ctx.handlerEnv.statusFolder, seq, ctx.handlerName, mapStrings(report, ctx.protectedValues.apply), ctx.host.now());
}

/**
 * One line in the handler log and one telemetry event per command outcome, so an operator reading
 * /var/log/azure/<extension>/ sees what every agent call did. Failures to record never fail the command.
 */
export async function recordOutcome(ctx: HandlerContext, operation: string, level: 'info' | 'error', rawMessage: string): Promise<void> {
  const message = ctx.protectedValues.apply(rawMessage);
  await appendLogRecord(
    ctx.handlerEnv.logFolder,
    'handler',
    { level, message: `${operation} (sequence ${ctx.seq}): ${message}`, time: ctx.host.now() },
    { redact: ctx.protectedValues.apply },
  );
  if (ctx.handlerEnv.eventsFolder) {
    try {
      await writeEvent(
        ctx.handlerEnv.eventsFolder,
        {
          level: level === 'error' ? 'Error' : 'Informational',
          taskName: operation,
          message,
          operationId: `${operation}-${ctx.seq}`,
          version: ctx.host.env['AZURE_GUEST_AGENT_EXTENSION_VERSION'] ?? '1.0',
        },
        ctx.host.now(),
      );
    } catch {
      // Telemetry is best effort: the status file is the contract.
    }
  }
}
