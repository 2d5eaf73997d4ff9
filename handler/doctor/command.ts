/**
 * `kvvm doctor [--settings FILE | --extension-folder DIR] [--json]`.
 *
 * --settings: a settings file (public settings, an ARM extension resource, or a guest-agent .settings file).
 * --extension-folder: the installed extension (HandlerEnvironment.json): its newest settings, protected settings
 * decrypted as the handler does, and the service's pid file. Neither: AZURE_GUEST_AGENT_EXTENSION_PATH, else the
 * newest /var/lib/waagent/Microsoft.Azure.KeyVault.KeyVaultForLinux-* folder.
 * Exit codes: 0 every check passed (warnings allowed), 1 a check failed or the command could not run.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { describeJsonError } from '../jsonError.js';
import { findHandlerEnvironment } from '../protocol/handlerEnvironment.js';
import { resolveSequenceNumber } from '../protocol/sequence.js';
import { readHandlerSettings } from '../protocol/settingsFile.js';
import { extractTargets } from '../settings/pasted.js';
import { parseFlags, usageError } from '../deploy/flags.js';
import { runDoctor, type DoctorCheck, type DoctorReport } from './doctor.js';
import { settingsReadOptions, type SettingsDecryptor } from '../commands/context.js';

export const DOCTOR_USAGE = 'kvvm doctor [--settings FILE | --extension-folder DIR] [--json]';

export interface DoctorIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
}

export interface DoctorDeps {
  tlsCa?: string[];
  now?: () => number;
  timeoutMs?: number;
  /** Where the Linux agent keeps extensions (default /var/lib/waagent). */
  waagentDir?: string;
  /** Tests on Linux only: stands in for the Windows protected-settings decryption (CryptDecryptMessage). */
  windowsDecrypt?: SettingsDecryptor;
}

const MARK: Record<DoctorCheck['status'], string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };
const TITLE: Record<DoctorCheck['id'], string> = {
  settings: 'settings',
  proxy: 'proxy',
  imds: 'identity endpoint',
  identity: 'identity token',
  'vault-dns': 'vault DNS',
  'vault-connect': 'vault TCP/TLS',
  clock: 'clock',
  secret: 'secret',
  store: 'store',
  service: 'service',
};

export function formatDoctorReport(r: DoctorReport): string {
  const lines = [`kvvm doctor: ${r.source}`, `identity: ${r.identity.label}${r.identity.objectId ? ` (object id ${r.identity.objectId})` : ''}`, ''];
  const width = Math.max(...r.checks.map((c) => TITLE[c.id].length));
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]} ${TITLE[c.id].padEnd(width)}  ${c.target}: ${c.message}`);
    if (c.fix && c.status !== 'pass') lines.push(`  ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  const warned = r.checks.filter((c) => c.status === 'warn').length;
  lines.push('', r.ok ? `All checks passed${warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}.` : `${failed} check${failed === 1 ? '' : 's'} failed.`);
  return lines.join('\n') + '\n';
}

async function newestKeyVaultFolder(waagentDir: string): Promise<string | undefined> {
  try {
    const names = (await readdir(waagentDir)).filter((n) => /^Microsoft\.Azure\.KeyVault\.KeyVaultFor(Linux|Windows)-/.test(n));
    const byVersion = (n: string): number[] => (n.split('-').pop() ?? '').split('.').map(Number);
    names.sort((a, b) => {
      const x = byVersion(a);
      const y = byVersion(b);
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
      return 0;
    });
    const last = names[names.length - 1];
    return last === undefined ? undefined : join(waagentDir, last);
  } catch {
    return undefined;
  }
}

export async function runDoctorCommand(argv: string[], io: DoctorIo, deps: DoctorDeps = {}): Promise<number> {
  const flags = parseFlags(argv, { values: ['settings', 'extension-folder'], switches: ['json'] }, DOCTOR_USAGE);
  if (flags.positionals.length > 0) throw usageError(`Unexpected argument "${flags.positionals[0] ?? ''}".`, DOCTOR_USAGE);
  const settingsFile = flags.values.get('settings');
  let folder = flags.values.get('extension-folder');
  if (settingsFile !== undefined && folder !== undefined) throw usageError('Give --settings or --extension-folder, not both.', DOCTOR_USAGE);

  let settings: unknown;
  let source: string;
  if (settingsFile !== undefined) {
    let doc: unknown;
    let text: string;
    try {
      text = (await readFile(settingsFile, 'utf8')).replace(/^\uFEFF/, '');
    } catch (err) {
      throw new KvvmError('usage', `Cannot read ${settingsFile}: ${(err as Error).message}.`, { fix: 'Point --settings at the extension settings JSON.' });
    }
    try {
      doc = JSON.parse(text);
    } catch {
      throw new KvvmError('usage', `${settingsFile} is not valid JSON ${describeJsonError(text)}.`, { fix: 'Point --settings at the extension settings JSON.' });
    }
    settings = extractTargets(doc)[0]?.settings ?? null;
    source = settingsFile;
  } else {
    folder ??= io.env['AZURE_GUEST_AGENT_EXTENSION_PATH'] ?? (await newestKeyVaultFolder(deps.waagentDir ?? '/var/lib/waagent'));
    if (folder === undefined) throw usageError('No settings to check: no installed Key Vault extension was found.', DOCTOR_USAGE);
    const handlerEnv = await findHandlerEnvironment({ env: { AZURE_GUEST_AGENT_EXTENSION_PATH: folder }, execPath: join(folder, 'none'), cwd: folder, retries: 0 });
    const seq = await resolveSequenceNumber(handlerEnv.configFolder, io.env);
    const readOptions = settingsReadOptions({ platform: io.platform, env: io.env, extensionFolder: handlerEnv.extensionFolder, windowsDecrypt: deps.windowsDecrypt });
    settings = (await readHandlerSettings(handlerEnv.configFolder, seq, readOptions)).settings;
    source = join(handlerEnv.configFolder, `${seq}.settings`);
    folder = handlerEnv.extensionFolder;
  }

  const report = await runDoctor({
    settings,
    source,
    env: io.env,
    platform: io.platform === 'win32' ? 'win32' : 'linux',
    ...(folder !== undefined ? { extensionFolder: folder } : {}),
    ...(deps.tlsCa ? { tlsCa: deps.tlsCa } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {}),
  });
  io.stdout(flags.switches.has('json') ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
  return report.ok ? 0 : 1;
}
