/**
 * Certificate lifecycle event 1001 ("certificate replaced"), what IIS "Automatic Rebind of Renewed Certificate"
 * listens for (Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational). Setting
 * CERT_RENEWAL_PROP_ID alone is not known to raise it; the documented way is the PKI module's
 * `Switch-Certificate -OldCert … -NewCert … -NotifyOnly` (-NotifyOnly: kvvm already set the renewal property).
 *
 * After activate() links an old version to a new one (linkOnRenewal), the store runs
 *   %SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe -NoProfile -NonInteractive -Command "<script>"
 * (absolute path: the service runs as LocalSystem with the machine PATH) and logs one line with the outcome. When
 * powershell.exe or the PKI module is missing (Server Core without it, Wine) the line says so and the activation
 * still succeeds: the event is a notification, the certificate is installed and linked either way.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { win32 } from 'node:path';
import type { StoreLocation } from '../../platform/win32/certStore.js';

/** Exit code of the script when the PKI module (Switch-Certificate) is not installed. */
const NO_PKI_MODULE_EXIT = 3;
/**
 * Printed by the script after Switch-Certificate succeeded: exit code 0 alone is not proof (Wine ships a
 * powershell.exe stub that runs nothing and exits 0, measured).
 */
const RAISED_MARKER = 'kvvm:lifecycle-event-raised';
const RUN_TIMEOUT_MS = 60_000;

export interface SwitchCertificateInput {
  location: StoreLocation;
  storeName: string;
  oldThumbprint: string;
  newThumbprint: string;
  /** %SystemRoot% (default C:\Windows). */
  systemRoot?: string;
}

export interface CommandLine {
  file: string;
  args: string[];
}

function powershellPath(systemRoot = 'C:\\Windows'): string {
  return win32.join(systemRoot, 'System32', 'WindowsPowerShell', 'v1.0', 'powershell.exe');
}

/** PowerShell single-quoted string literal. */
function psQuote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The exact powershell.exe command line (pure). Thumbprints must be SHA-1 hex; the store name is quoted. */
export function switchCertificateCommand(input: SwitchCertificateInput): CommandLine {
  for (const t of [input.oldThumbprint, input.newThumbprint]) {
    if (!/^[0-9A-Fa-f]{40}$/.test(t)) throw new Error(`not a certificate thumbprint: ${t}`);
  }
  const item = (thumbprint: string): string => `(Get-Item -LiteralPath ${psQuote(`Cert:\\${input.location}\\${input.storeName}\\${thumbprint.toUpperCase()}`)})`;
  const script = [
    `if (-not (Get-Command Switch-Certificate -ErrorAction SilentlyContinue)) { Import-Module PKI -ErrorAction SilentlyContinue }`,
    `if (-not (Get-Command Switch-Certificate -ErrorAction SilentlyContinue)) { exit ${NO_PKI_MODULE_EXIT} }`,
    `Switch-Certificate -OldCert ${item(input.oldThumbprint)} -NewCert ${item(input.newThumbprint)} -NotifyOnly -ErrorAction Stop`,
    `Write-Output ${psQuote(RAISED_MARKER)}`,
  ].join('; ');
  return { file: powershellPath(input.systemRoot), args: ['-NoProfile', '-NonInteractive', '-Command', script] };
}

export type LifecycleOutcome = { raised: true } | { raised: false; reason: 'no-powershell' | 'no-pki-module' | 'failed'; detail: string };

export interface LifecycleHost {
  exists: (path: string) => boolean;
  run: (command: CommandLine) => Promise<{ code: number | null; output: string }>;
}

const realLifecycleHost: LifecycleHost = {
  exists: existsSync,
  run: (command) =>
    new Promise((resolve) => {
      execFile(command.file, command.args, { timeout: RUN_TIMEOUT_MS, windowsHide: true }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
        resolve({ code, output: `${stdout}${stderr}`.trim() || (err?.message ?? '') });
      });
    }),
};

/** Raises event 1001 through Switch-Certificate -NotifyOnly; never throws (a notification must not fail an activation). */
export async function raiseRenewalEvent(input: SwitchCertificateInput, host: LifecycleHost = realLifecycleHost): Promise<LifecycleOutcome> {
  const command = switchCertificateCommand(input);
  if (!host.exists(command.file)) return { raised: false, reason: 'no-powershell', detail: `${command.file} does not exist` };
  try {
    const { code, output } = await host.run(command);
    if (code === 0 && output.includes(RAISED_MARKER)) return { raised: true };
    if (code === 0) return { raised: false, reason: 'no-powershell', detail: `${command.file} exited without running the script (not a working PowerShell)` };
    if (code === NO_PKI_MODULE_EXIT) return { raised: false, reason: 'no-pki-module', detail: 'the PKI PowerShell module (Switch-Certificate) is not installed' };
    return { raised: false, reason: 'failed', detail: `Switch-Certificate exited with ${code ?? 'a signal/timeout'}: ${output.split(/\r?\n/)[0] ?? ''}` };
  } catch (err) {
    return { raised: false, reason: 'failed', detail: err instanceof Error ? err.message : String(err) };
  }
}

/** The one log line for an outcome. */
export function lifecycleLogLine(input: SwitchCertificateInput, outcome: LifecycleOutcome): { level: 'info' | 'warn'; message: string } {
  const what = `${input.location}\\${input.storeName}: ${input.oldThumbprint} -> ${input.newThumbprint}`;
  if (outcome.raised) return { level: 'info', message: `certificate lifecycle event 1001 raised (Switch-Certificate -NotifyOnly) for ${what}` };
  return {
    level: 'warn',
    message:
      `certificate lifecycle event 1001 NOT raised for ${what}: ${outcome.detail}; the renewal link (CERT_RENEWAL_PROP_ID) is set, ` +
      'but IIS Automatic Rebind will not see this renewal until the binding is updated or the event is raised by hand',
  };
}
