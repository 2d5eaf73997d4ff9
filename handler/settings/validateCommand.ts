/**
 * `kvvm validate <file> [--handler-version <v>] [--platform linux|win32] [--json]`: check settings before
 * deploying them, under the behaviour profile (3.x / 4.x) of the handler version that will run them.
 *
 * The file may hold anything pasted.ts recognises (public settings, a .settings file, an ARM resource, template
 * or parameters file, {settings}, {publicSettings}); every KeyVaultFor* extension found is checked, each under
 * its own typeHandlerVersion and platform unless the options say otherwise.
 * Exit codes: 0 valid, 1 invalid, 2 usage error (bad arguments, unreadable file).
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import { describeJsonError } from '../jsonError.js';
import type { KvvmConfig } from './config.js';
import { parseSettings } from './parse.js';
import { extractTargets, replaceArmExpressions, type ValidationTarget } from './pasted.js';
import type { SettingsProblem } from './problems.js';
import { describeProfile, majorOf, profileFor, type BehaviourProfile } from './profile.js';

export interface ValidateIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
  readFile?: (path: string) => Promise<string>;
  /** Default for --platform; the CLI passes process.platform. Anything but win32 means linux. */
  platform?: string;
  /** Schemas folder override (tests). */
  schemasDir?: string;
}

export const VALIDATE_USAGE = `Usage: kvvm validate <file.json> [--handler-version <v>] [--platform linux|win32] [--json]

Checks Key Vault VM extension settings and prints the normalized configuration or every problem found.
<file.json> may contain the public settings, {"settings": ...}, {"publicSettings": ...}, a guest-agent
.settings file ({"runtimeSettings": [...]}), an ARM extension resource, or a whole ARM template or parameters
file (every KeyVaultForLinux/KeyVaultForWindows extension in it is checked). ARM expressions ("[...]") are
evaluated at deployment: they are noted, and everything else is checked.

  --handler-version <v>   check under the profile of this typeHandlerVersion: 3.x (major <= 3) or 4.x
                          (default: the document's typeHandlerVersion, else 4.x)
  --platform linux|win32  validate for this platform (default: the document's extension type, else the current one)
  --json                  print a machine-readable result
  --help                  show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

function summary(config: KvvmConfig): string[] {
  const lines = [
    `settings generation ${config.generation}, ${config.observedCertificates.length} certificate${config.observedCertificates.length === 1 ? '' : 's'}, ` +
      `polling every ${config.pollingIntervalS} s, initial sync: ${config.initialSync}, link on renewal: ${config.linkOnRenewal}`,
  ];
  const a = config.authentication;
  lines.push(
    `identity: ${a.msiClientId ? `user-assigned ${a.msiClientId}` : a.clientId ? `application ${a.clientId} (certificate ${a.clientCertificateSubjectName ?? '?'})` : 'system-assigned'}` +
      (a.msiEndpoint ? ` via ${a.msiEndpoint}` : ''),
  );
  for (const c of config.observedCertificates) {
    const t = c.target;
    const target =
      t.platform === 'windows'
        ? `${t.storeLocation}\\${t.storeName}${t.keyExportable ? ' (exportable)' : ''}${t.accounts.length ? ` accounts: ${t.accounts.join(', ')}` : ''}`
        : `${t.directory}/${t.linkName}${t.acls.length ? ` acls: ${t.acls.map((x) => `${x.user ?? ''}${x.group !== undefined ? ':' + x.group : ''}`).join(', ')}` : ''}`;
    lines.push(`  ${c.vaultUrl}/secrets/${c.secretName}${c.pinnedVersion ? `/${c.pinnedVersion}` : ''} -> ${target}`);
  }
  return lines;
}

function problemLines(problems: readonly SettingsProblem[]): string[] {
  return problems.flatMap((p) => [`  ${p.path === '' ? '(settings)' : p.path}: ${p.message}`, `    Fix: ${p.fix}`]);
}

/** `argv`: the arguments AFTER "validate". Resolves to the exit code; never calls process.exit. */
export async function runValidateCommand(argv: string[], io: ValidateIo): Promise<number> {
  let file: string | undefined;
  let json = false;
  let platformOption: 'linux' | 'win32' | undefined;
  let versionOption: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      io.stdout(VALIDATE_USAGE + '\n');
      return 0;
    } else if (arg === '--json') {
      json = true;
    } else if (arg === '--platform' || arg.startsWith('--platform=')) {
      const value = arg.includes('=') ? arg.slice('--platform='.length) : argv[++i];
      if (value !== 'linux' && value !== 'win32') {
        io.stderr(`kvvm validate: --platform must be "linux" or "win32", got ${JSON.stringify(value ?? '')}.\n\n${VALIDATE_USAGE}\n`);
        return 2;
      }
      platformOption = value;
    } else if (arg === '--handler-version' || arg.startsWith('--handler-version=')) {
      const value = arg.includes('=') ? arg.slice('--handler-version='.length) : argv[++i];
      if (value === undefined || majorOf(value) === undefined) {
        io.stderr(`kvvm validate: --handler-version must be a version such as "3.0" or "4.0", got ${JSON.stringify(value ?? '')}.\n\n${VALIDATE_USAGE}\n`);
        return 2;
      }
      versionOption = value;
    } else if (arg.startsWith('-') && arg !== '-') {
      io.stderr(`kvvm validate: unknown option ${arg}.\n\n${VALIDATE_USAGE}\n`);
      return 2;
    } else if (file === undefined) {
      file = arg;
    } else {
      io.stderr(`kvvm validate: only one settings file can be checked at a time (got ${JSON.stringify(file)} and ${JSON.stringify(arg)}).\n`);
      return 2;
    }
  }
  if (file === undefined) {
    io.stderr(`kvvm validate: no settings file given.\n\n${VALIDATE_USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = await (io.readFile ?? ((p: string) => fsReadFile(p, 'utf8')))(file);
  } catch (err) {
    io.stderr(`kvvm validate: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  // PowerShell's Out-File/Set-Content write a BOM; JSON.parse rejects it.
  text = text.replace(/^\uFEFF/, '');
  const defaultPlatform = platformOption ?? (io.platform === 'win32' ? 'win32' : 'linux');
  let doc: unknown = null;
  if (text.trim() !== '') {
    try {
      doc = JSON.parse(text);
    } catch {
      // Maybe the escaped-quote form: parseSettings knows how to decode a string holding JSON.
      doc = text;
      if (!text.includes('\\"')) {
        const problemsOut: SettingsProblem[] = [
          {
            path: '',
            reason: 'file-not-json',
            message: `${file} is not valid JSON ${describeJsonError(text)}.`,
            fix: 'Fix the JSON syntax (an editor with the kvvm schema shows where).',
          },
        ];
        const profile = profileFor(versionOption ?? '4.0', defaultPlatform, versionOption ? 'option' : 'default');
        return report(io, json, file, [{ target: { kind: 'file', at: '', settings: null, notes: [] }, profile, result: { ok: false, problems: problemsOut }, notes: [] }]);
      }
    }
  }
  const checked = extractTargets(doc).map((target) => check(target, { platformOption, versionOption, defaultPlatform, env: io.env, schemasDir: io.schemasDir }));
  return report(io, json, file, checked);
}

interface Checked {
  target: ValidationTarget;
  profile: BehaviourProfile;
  result: ReturnType<typeof parseSettings>;
  notes: string[];
}

function check(
  target: ValidationTarget,
  o: {
    platformOption: 'linux' | 'win32' | undefined;
    versionOption: string | undefined;
    defaultPlatform: 'linux' | 'win32';
    env: Record<string, string | undefined>;
    schemasDir: string | undefined;
  },
): Checked {
  const platform = o.platformOption ?? target.platform ?? o.defaultPlatform;
  const version = o.versionOption ?? target.handlerVersion;
  // Without any version, kvvm's strict 4.x rules: whatever passes them passes 3.x too, except the 3.x-only keys.
  const profile = profileFor(version ?? '4.0', platform, o.versionOption !== undefined ? 'option' : version !== undefined ? 'document' : 'default');
  const notes = [...target.notes];
  if (version === undefined) notes.push('No handler version given: checked under the 4.x profile (pass --handler-version 3.0 for the 3.x rules).');
  const replaced = replaceArmExpressions(target.settings, platform);
  notes.push(...replaced.notes);
  if (typeof target.settings === 'string' && replaced.settings === undefined) {
    return { target, profile, notes, result: { ok: false, problems: [] } };
  }
  const result = parseSettings(replaced.settings ?? null, { platform, env: o.env, profile, ...(o.schemasDir !== undefined ? { schemasDir: o.schemasDir } : {}) });
  return { target, profile, result, notes };
}

/** Whole settings given as one ARM expression: nothing to check before deployment, and not a failure. */
function deferred(c: Checked): boolean {
  return !c.result.ok && c.result.problems.length === 0;
}

function report(io: ValidateIo, json: boolean, file: string, checked: Checked[]): number {
  const ok = checked.every((c) => c.result.ok || deferred(c));
  if (json) {
    const items = checked.map((c) => ({
      source: c.target.kind,
      at: c.target.at,
      platform: c.profile.platform,
      profile: c.profile.line,
      handlerVersion: c.profile.handlerVersion,
      notes: c.notes,
      ...c.result,
    }));
    // One target keeps the original flat shape; several are listed.
    const first = items[0];
    io.stdout(JSON.stringify(items.length === 1 && first ? { file, ...first } : { file, ok, targets: items }, null, 2) + '\n');
    return ok ? 0 : 1;
  }
  const out: string[] = [];
  for (const c of checked) {
    const platform = c.profile.platform;
    out.push(`${file}${c.target.at ? ` ${c.target.at}` : ''} (${c.target.kind}, checked for ${platform}, ${describeProfile(c.profile)})`);
    for (const n of c.notes) out.push(`note: ${n}`);
    if (deferred(c)) {
      out.push('DEFERRED: the settings are one ARM expression, evaluated at deployment.');
    } else if (c.result.ok) {
      out.push('OK: ' + summary(c.result.config).join('\n'));
      if (c.result.config.warnings.length > 0) {
        out.push(`${c.result.config.warnings.length} warning${c.result.config.warnings.length === 1 ? '' : 's'}:`);
        for (const w of c.result.config.warnings) out.push(`  ${w.path === '' ? '(settings)' : w.path}: ${w.message}`);
      }
    } else {
      out.push(`INVALID: ${c.result.problems.length} problem${c.result.problems.length === 1 ? '' : 's'}`);
      out.push(...problemLines(c.result.problems));
    }
  }
  io.stdout(out.join('\n') + '\n');
  return ok ? 0 : 1;
}
