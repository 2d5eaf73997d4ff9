/**
 * The settings that hand a changed certificate to what uses it (kvvm extensions): `onChange` (per certificate or
 * the global default), Linux `formats`/`owner`/`group`/`pfxPasswordFile`, Windows `updateBindings`. The schema
 * checked their shape; this checks what a schema cannot say: the command's executable is an absolute path (and,
 * where the service runs, exists), account names are safe to pass on, and each platform warns about the other's keys.
 */
import { posix, win32 } from 'node:path';
import { DEFAULT_CHANGE_TIMEOUT_S, type CertificateFormat, type ChangeCommand, type SettingsWarning } from './config.js';
import { problem, show, type SettingsProblem } from './problems.js';
import { asBoolean, asObject, asString } from './values.js';

export interface ConsumerDefaults {
  platform: 'linux' | 'win32';
  /** Whether a path names an executable file on this machine; absent (deploy, offline validation): not checked. */
  executableExists?: (path: string) => boolean;
}

interface Sink {
  problems: SettingsProblem[];
  warnings: SettingsWarning[];
}

/** Names passed to chown: no leading dash (option injection), no shell metacharacters. */
const POSIX_ACCOUNT = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,255}\$?$/;
const FORMATS: readonly CertificateFormat[] = ['pem', 'key', 'crt', 'pfx'];

/** `value` is secretsManagementSettings.onChange or a certificate's; undefined when absent or invalid. */
export function changeCommand(value: unknown, at: string, d: ConsumerDefaults, sink: Sink): ChangeCommand | undefined {
  const obj = asObject(value);
  const list = obj?.['command'];
  if (!obj || !Array.isArray(list) || list.length === 0 || !list.every((a): a is string => typeof a === 'string' && a !== '')) {
    return undefined; // the schema reported the shape
  }
  const path = `${at}/command/0`;
  const exe = list[0]!;
  const isAbsolute = d.platform === 'win32' ? win32.isAbsolute(exe) && /^[A-Za-z]:\\/.test(exe) : posix.isAbsolute(exe);
  const example = d.platform === 'win32' ? 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe' : '/usr/bin/systemctl';
  if (!isAbsolute) {
    sink.problems.push(
      problem(
        path,
        'on-change-not-absolute',
        `onChange command executable ${show(exe)} is not an absolute path; kvvm runs it without a shell and without searching PATH.`,
        `Write the full path of the executable, e.g. "${example}" (find it with "${d.platform === 'win32' ? 'where.exe' : 'command -v'} ${exe}").`,
      ),
    );
    return undefined;
  }
  if (list.some((a) => a.includes('\0'))) {
    sink.problems.push(problem(`${at}/command`, 'on-change-nul', 'An onChange command argument contains a NUL character.', 'Remove the NUL character from the argument.'));
    return undefined;
  }
  if (d.executableExists && !d.executableExists(exe)) {
    sink.problems.push(
      problem(
        path,
        'on-change-not-found',
        `onChange command executable ${show(exe)} does not exist on this machine or is not an executable file.`,
        "Install the program or correct the path; the command runs as the extension service's user (root / LocalSystem).",
      ),
    );
    return undefined;
  }
  const t = obj['timeoutInS'];
  const timeoutS = typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= 3600 ? t : DEFAULT_CHANGE_TIMEOUT_S;
  return { argv: [...list], timeoutS, path: `${at}/command` };
}

/** Only what differs from the defaults, so a certificate without these keys normalises exactly as before. */
export interface ConsumerSettings {
  formats?: CertificateFormat[];
  fileOwner?: string;
  fileGroup?: string;
  pfxPasswordFile?: string;
  updateBindings?: true;
}

/** Per-certificate file and binding settings of one observedCertificates entry (`own`, at JSON path `at`). */
export function consumerSettings(own: Record<string, unknown>, at: string, d: ConsumerDefaults, sink: Sink): ConsumerSettings {
  const linuxKeys = ['formats', 'owner', 'group', 'pfxPasswordFile'].filter((k) => own[k] !== undefined);
  const updateBindings = asBoolean(own['updateBindings']) ?? false;
  if (d.platform === 'win32') {
    for (const k of linuxKeys) sink.warnings.push({ path: `${at}/${k}`, message: `${k} is a Linux setting; it is ignored on Windows.` });
    return updateBindings ? { updateBindings } : {};
  }
  if (own['updateBindings'] !== undefined) {
    sink.warnings.push({
      path: `${at}/updateBindings`,
      message: 'updateBindings is a Windows setting (http.sys bindings); it is ignored on Linux (use onChange to reload the server).',
    });
  }
  const listed = Array.isArray(own['formats']) ? own['formats'].filter((f): f is CertificateFormat => (FORMATS as readonly unknown[]).includes(f)) : [];
  // The combined PEM is always written: it is KeyVaultForLinux's file and what the store lists versions from.
  const formats: CertificateFormat[] = ['pem', ...FORMATS.filter((f) => f !== 'pem' && listed.includes(f))];
  const out: ConsumerSettings = formats.length > 1 ? { formats } : {};
  for (const [key, field, kind] of [
    ['owner', 'fileOwner', 'user'],
    ['group', 'fileGroup', 'group'],
  ] as const) {
    const v = asString(own[key])?.trim();
    if (v === undefined) continue;
    if (!POSIX_ACCOUNT.test(v)) {
      sink.problems.push(
        problem(
          `${at}/${key}`,
          'invalid-file-owner',
          `${key} ${show(v)} is not a valid Linux ${kind} name (letters, digits, "_", ".", "@", "-", not starting with "-").`,
          `Write the ${kind} name exactly as "getent ${kind === 'user' ? 'passwd' : 'group'}" shows it, or a numeric ${kind === 'user' ? 'uid' : 'gid'}.`,
        ),
      );
      continue;
    }
    out[field] = v;
  }
  const pw = asString(own['pfxPasswordFile']);
  if (pw !== undefined) {
    if (!posix.isAbsolute(pw) || pw.includes('\0')) {
      sink.problems.push(
        problem(
          `${at}/pfxPasswordFile`,
          'pfx-password-file-not-absolute',
          `pfxPasswordFile ${show(pw)} is not an absolute path.`,
          'Write the absolute path of the password file, e.g. "/etc/kvvm/app.pfx.pass".',
        ),
      );
    } else {
      out.pfxPasswordFile = pw;
      if (!formats.includes('pfx')) sink.warnings.push({ path: `${at}/pfxPasswordFile`, message: 'pfxPasswordFile is ignored: "pfx" is not in formats.' });
    }
  }
  return out;
}
