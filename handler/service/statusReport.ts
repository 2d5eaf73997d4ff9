/**
 * Turns sync results into the guest-agent status report (pure). The top-level state drives extension sequencing:
 * dependent extensions wait while it is `transitioning` and proceed on `success` (see PROTOCOL.md).
 */
import type { CertificateSyncResult } from '../engine/certificateSync.js';
import type { InitialSyncMode, SettingsWarning } from '../settings/config.js';
import type { HandlerStatusReport, SubStatus } from '../protocol/status.js';

export type ServicePhase =
  /** Service started, nothing synced yet. */
  | { kind: 'starting' }
  /** Initial sync not complete yet; another attempt will follow. */
  | { kind: 'retrying'; attempt: number; maxAttempts: number | undefined; nextRetryAt: Date }
  /** The bounded initial sync gave up. Polling goes on and the status turns success once everything is in. */
  | { kind: 'gave-up'; attempts: number }
  /** Steady state: polling on the interval. */
  | { kind: 'polling'; nextPollAt: Date }
  /** A cycle has run for a while (a slow certificate): what is known so far, under the status of the phase before. */
  | { kind: 'syncing'; since: Date; previous: Exclude<ServicePhase, { kind: 'syncing' }> };

export interface StatusReportInput {
  mode: InitialSyncMode;
  phase: ServicePhase;
  expected: number;
  results: readonly CertificateSyncResult[];
  warnings: readonly SettingsWarning[];
}

function certificateSubstatus(r: CertificateSyncResult): SubStatus {
  const sub = installSubstatus(r);
  if (!r.followUps?.length) return sub;
  // What the consumers did (onChange command, moved bindings): a failure there is a warning, never an error,
  // because the certificate itself is in place.
  const failed = r.followUps.some((f) => !f.ok);
  return {
    ...sub,
    status: failed && sub.status === 'success' ? 'warning' : sub.status,
    message: `${sub.message} ${r.followUps.map((f) => f.text).join(' ')}`,
  };
}

function installSubstatus(r: CertificateSyncResult): SubStatus {
  const name = `${r.cert.vaultName}/${r.cert.secretName}`;
  const installed =
    r.activeVersion !== undefined
      ? `version ${r.activeVersion}, thumbprint ${r.thumbprint ?? '?'}, expires ${r.notAfter?.toISOString() ?? '?'}${r.location ? `, in ${r.location}` : ''}`
      : 'not installed';
  switch (r.state) {
    case 'installed':
      return { name, status: 'success', code: 0, message: `Installed: ${installed}.${r.message ? ` ${r.message}` : ''}` };
    case 'unchanged':
      return { name, status: 'success', code: 0, message: `Up to date: ${installed}.${r.message ? ` ${r.message}` : ''}` };
    case 'skipped':
      return { name, status: 'warning', code: 0, message: `Skipped: ${r.message ?? ''} (reason: ${r.reason ?? 'skipped'})` };
    case 'error':
      return {
        name,
        status: 'error',
        code: 1,
        message: `${r.message ?? 'failed'} (reason: ${r.reason ?? 'unknown'}). Currently installed: ${installed}.`,
      };
  }
}

export function buildStatusReport(input: StatusReportInput): HandlerStatusReport {
  const substatus = input.results.map(certificateSubstatus);
  const failed = input.results.filter((r) => r.state === 'error');
  // In place: synced this cycle, or failed this cycle with an earlier version still installed and active (a new
  // sequence number's first cycle, a vault outage): that certificate is in use, only not refreshed.
  const kept = failed.filter((r) => r.activeVersion !== undefined).length;
  const done = input.results.length - failed.length + kept;
  const warnings = input.warnings.length ? ` Settings warnings: ${input.warnings.map((w) => `${w.path}: ${w.message}`).join(' ')}` : '';
  const firstErrors = failed
    .slice(0, 3)
    .map((r) => `${r.cert.vaultName}/${r.cert.secretName}: ${r.message ?? r.reason ?? 'failed'}`)
    .join(' | ');
  const progress = `${done} of ${input.expected} certificates in place${kept > 0 ? ` (${kept} at an earlier version: refreshing it failed)` : ''}`;
  const report = (status: HandlerStatusReport['status'], code: number, message: string): HandlerStatusReport => ({
    operation: 'Enable',
    status,
    code,
    message: message + warnings,
    substatus,
  });

  const phase = input.phase;
  switch (phase.kind) {
    case 'syncing': {
      // The top-level state stays what the phase before said (dependent extensions must not see it flip); only the
      // message and the substatus move on.
      const before = buildStatusReport({ ...input, phase: phase.previous });
      const pending = Math.max(0, input.expected - input.results.length);
      const left = pending > 0 ? `, ${pending} not yet checked` : '';
      return report(before.status, before.code, `Sync in progress since ${phase.since.toISOString()}: ${progress}${left}; each certificate's substatus shows its latest result.`);
    }
    case 'starting':
      if (input.mode === 'none') return report('success', 0, `Polling started for ${input.expected} certificates.`);
      return report('transitioning', 0, `Initial sync of ${input.expected} certificates started.`);
    case 'retrying': {
      const of = phase.maxAttempts === undefined ? '' : ` of ${phase.maxAttempts}`;
      return report('transitioning', 0, `Initial sync: ${progress}; attempt ${phase.attempt}${of} failed, next attempt at ${phase.nextRetryAt.toISOString()}. ${firstErrors}`);
    }
    case 'gave-up':
      return report(
        'error',
        1,
        `Initial sync failed after ${phase.attempts} attempts: ${progress}. ${firstErrors}. Polling continues and this status turns success once every certificate is installed.`,
      );
    case 'polling': {
      const next = `next poll at ${phase.nextPollAt.toISOString()}`;
      if (failed.length === 0) return report('success', 0, `${progress}; ${next}.`);
      // Already provisioned: stay success so a reboot's re-enable does not block dependent extensions,
      // but say exactly what failed; each certificate's substatus carries the details and fix.
      return report('success', 0, `${progress}; ${failed.length} failed on the last poll: ${firstErrors}; ${next}.`);
    }
  }
}
