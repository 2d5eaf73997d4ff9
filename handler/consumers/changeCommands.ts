/**
 * After a poll cycle: run each certificate's onChange command when its active version changed. Never on an
 * unchanged poll; once per distinct command per cycle however many certificates that share it changed (nginx
 * reloads once for ten rotated certificates); after the store has the new version and its link (the cycle is over).
 * A failing command is reported and logged, never undoes the install, and runs again only on the next change (or,
 * when the service stopped before it finished, when the service starts again: followUps.ts).
 */
import { join } from 'node:path';
import type { CertificateSyncResult, FollowUp, SyncLogger } from '../engine/certificateSync.js';
import type { ChangeCommand, LinuxCertificateTarget } from '../settings/config.js';
import type { CommandOutcome, RunCommandOptions } from './runCommand.js';
import type { FollowUpMemory } from './followUps.js';

export interface ChangeCommandDeps {
  platform: 'linux' | 'win32';
  /** The service's environment: only a few harmless variables are passed on (PATH, HOME, locale, Windows basics). */
  serviceEnv: Readonly<Record<string, string | undefined>>;
  run: (argv: readonly string[], options: RunCommandOptions) => Promise<CommandOutcome>;
  log: SyncLogger;
}

interface PlannedCommand {
  command: ChangeCommand;
  /** The certificates whose change triggers it, in settings order; the first one fills the KVVM_* variables. */
  changed: CertificateSyncResult[];
}

/** Pure: which commands this cycle's results call for, one entry per distinct argument vector. */
function planChangeCommands(results: readonly CertificateSyncResult[]): PlannedCommand[] {
  const byCommand = new Map<string, PlannedCommand>();
  for (const r of results) {
    const command = r.cert.onChange;
    if (!command || !r.activated || r.activeVersion === undefined) continue;
    const key = JSON.stringify(command.argv);
    const planned = byCommand.get(key);
    if (planned) {
      planned.changed.push(r);
      // Shared by certificates with different limits: the most patient one wins.
      if (command.timeoutS > planned.command.timeoutS) planned.command = { ...planned.command, timeoutS: command.timeoutS };
    } else {
      byCommand.set(key, { command, changed: [r] });
    }
  }
  return [...byCommand.values()];
}

const PASSED_ON = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'SystemRoot', 'windir', 'SystemDrive', 'TEMP', 'TMP', 'ComSpec', 'PATHEXT'];
const DEFAULT_PATH = { linux: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', win32: 'C:\\Windows\\System32;C:\\Windows' };

/** Extra files' stable links, named after the format (see the PEM store). */
function formatLinkPath(target: LinuxCertificateTarget, format: 'key' | 'crt' | 'pfx'): string {
  return join(target.directory, `${target.linkName}.${format}`);
}

/** The documented environment of an onChange command (README, "Reload your server after a rotation"). */
function commandEnvironment(planned: PlannedCommand, deps: Pick<ChangeCommandDeps, 'platform' | 'serviceEnv'>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const name of PASSED_ON) {
    const value = deps.serviceEnv[name];
    if (value !== undefined) vars[name] = value;
  }
  vars['PATH'] ??= DEFAULT_PATH[deps.platform];
  const first = planned.changed[0]!;
  const cert = first.cert;
  Object.assign(vars, {
    KVVM_CERTIFICATE_NAME: cert.secretName,
    KVVM_VAULT_NAME: cert.vaultName,
    KVVM_VAULT_URL: cert.vaultUrl,
    KVVM_VERSION: first.activeVersion ?? '',
    KVVM_THUMBPRINT: first.thumbprint ?? '',
    KVVM_NOT_AFTER: first.notAfter?.toISOString() ?? '',
    KVVM_PREVIOUS_VERSION: first.activated?.previousVersion ?? '',
    KVVM_PREVIOUS_THUMBPRINT: first.activated?.previousThumbprint ?? '',
    KVVM_CHANGED_COUNT: String(planned.changed.length),
    KVVM_CHANGED_CERTIFICATES: planned.changed.map((r) => `${r.cert.vaultName}/${r.cert.secretName}`).join(' '),
  });
  const target = cert.target;
  if (target.platform === 'windows') {
    vars['KVVM_STORE'] = `${target.storeLocation}\\${target.storeName}`;
  } else {
    vars['KVVM_LINK_PATH'] = join(target.directory, target.linkName);
    vars['KVVM_FILE_PATH'] = first.location ?? '';
    for (const format of ['key', 'crt', 'pfx'] as const) {
      if (target.formats?.includes(format)) vars[`KVVM_${format.toUpperCase()}_PATH`] = formatLinkPath(target, format);
    }
  }
  return vars;
}

/** One sentence for the substatus: exit code and the first line of stderr, or the time limit. */
function describeOutcome(outcome: CommandOutcome, timeoutS: number): FollowUp {
  const exe = outcome.argv[0] ?? '';
  const firstLine = outcome.stderr
    .split(/\r?\n/)
    .find((l) => l.trim() !== '')
    ?.trim()
    .slice(0, 300);
  const stderr = firstLine ? `: ${firstLine}` : '';
  if (outcome.spawnError !== undefined) return { ok: false, text: `onChange command ${exe} could not start: ${outcome.spawnError}.` };
  if (outcome.timedOut) return { ok: false, text: `onChange command ${exe} did not finish within ${timeoutS} s and was killed with its process group${stderr}.` };
  if (outcome.exitCode === 0) return { ok: true, text: `onChange command ${exe} succeeded.` };
  const how = outcome.exitCode === null ? `was ended by ${outcome.signal ?? 'a signal'}` : `exited with code ${outcome.exitCode}`;
  return { ok: false, text: `onChange command ${exe} ${how}${stderr}. The new version stays installed; the command runs again on the next change.` };
}

/**
 * Runs the commands this cycle calls for, one at a time (reloads of the same server must not overlap), and
 * records each outcome for every certificate that triggered it.
 */
export async function runChangeCommands(results: readonly CertificateSyncResult[], deps: ChangeCommandDeps, memory: FollowUpMemory): Promise<void> {
  for (const planned of planChangeCommands(results)) {
    const { command } = planned;
    const vars = commandEnvironment(planned, deps);
    const names = vars['KVVM_CHANGED_CERTIFICATES'];
    deps.log.info(`running onChange command for ${names}`, { command: command.argv, timeoutS: command.timeoutS });
    const outcome = await deps.run(command.argv, { env: vars, timeoutMs: command.timeoutS * 1000, platform: deps.platform });
    const followUp = describeOutcome(outcome, command.timeoutS);
    const meta = {
      command: command.argv,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      droppedBytes: outcome.droppedBytes,
    };
    (followUp.ok ? deps.log.info : deps.log.warn).call(deps.log, `${names}: ${followUp.text}`, meta);
    for (const r of planned.changed) memory.record(r, followUp);
  }
}
