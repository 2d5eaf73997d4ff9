/**
 * `kvvm validate <file> [--platform linux|win32] [--json]`: check settings before deploying them.
 *
 * The file may hold the public settings, a guest-agent `<seq>.settings` file, or an ARM extension resource
 * (properties.settings, with plain properties.protectedSettings merged over it as the agent would).
 * Exit codes: 0 valid, 1 invalid, 2 usage error (bad arguments, unreadable file).
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import { describeJsonError } from '../jsonError.js';
import type { KvvmConfig } from './config.js';
import { parseSettings } from './parse.js';
import type { SettingsProblem } from './problems.js';
import { asObject, asString } from './values.js';

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

export const VALIDATE_USAGE = `Usage: kvvm validate <settings.json> [--platform linux|win32] [--json]

Checks Key Vault VM extension settings and prints the normalized configuration or every problem found.
<settings.json> may contain the public settings, a guest-agent .settings file ({"runtimeSettings": [...]}),
or an ARM extension resource ({"properties": {"settings": ...}}).

  --platform linux|win32  validate for this platform (default: the current one)
  --json                  print a machine-readable result
  --help                  show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

type Source = { kind: string; settings: unknown; notes: string[] };

/** Find the settings inside whatever file the operator pointed us at. */
export function extractSettings(doc: unknown): Source {
  const o = asObject(doc);
  const runtime = o?.['runtimeSettings'];
  if (Array.isArray(runtime)) {
    const hs = asObject(asObject(runtime[0])?.['handlerSettings']);
    const notes: string[] = [];
    if (typeof hs?.['protectedSettings'] === 'string' && hs['protectedSettings'] !== '') {
      notes.push('protectedSettings are encrypted to the VM certificate and were not checked.');
    }
    return { kind: 'guest-agent .settings file', settings: hs?.['publicSettings'] ?? null, notes };
  }
  const props = asObject(o?.['properties']);
  if (props && ('settings' in props || 'protectedSettings' in props || 'typeHandlerVersion' in props)) {
    const notes: string[] = [];
    const pub = props['settings'];
    const prot = asObject(props['protectedSettings']);
    let settings: unknown = pub ?? null;
    const pubObj = asObject(pub);
    if (prot && pubObj) settings = { ...pubObj, ...prot }; // the agent merges protected over public
    const thv = asString(props['typeHandlerVersion']) ?? (typeof props['typeHandlerVersion'] === 'number' ? String(props['typeHandlerVersion']) : undefined);
    if (thv !== undefined) notes.push(`typeHandlerVersion ${thv}`);
    return { kind: 'ARM extension resource', settings, notes };
  }
  return { kind: 'public settings', settings: doc, notes: [] };
}

function summary(config: KvvmConfig, platform: string): string[] {
  const lines = [
    `settings generation ${config.generation}, ${config.observedCertificates.length} certificate${config.observedCertificates.length === 1 ? '' : 's'}, ` +
      `polling every ${config.pollingIntervalS} s, initial sync: ${config.initialSync}, link on renewal: ${config.linkOnRenewal}`,
  ];
  const a = config.authentication;
  lines.push(`identity: ${a.msiClientId ? `user-assigned ${a.msiClientId}` : a.clientId ? `application ${a.clientId} (certificate ${a.clientCertificateSubjectName ?? '?'})` : 'system-assigned'}` +
    (a.msiEndpoint ? ` via ${a.msiEndpoint}` : ''));
  for (const c of config.observedCertificates) {
    const target = platform === 'win32'
      ? `${c.certificateStoreLocation}\\${c.certificateStoreName}${c.keyExportable ? ' (exportable)' : ''}${c.accounts.length ? ` accounts: ${c.accounts.join(', ')}` : ''}`
      : `${c.certificateStoreLocation}/${c.linkName}${c.acls.length ? ` acls: ${c.acls.map((x) => `${x.user ?? ''}${x.group !== undefined ? ':' + x.group : ''}`).join(', ')}` : ''}`;
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
  let platform: 'linux' | 'win32' = io.platform === 'win32' ? 'win32' : 'linux';
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
      platform = value;
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
  let doc: unknown = null;
  if (text.trim() !== '') {
    try {
      doc = JSON.parse(text);
    } catch {
      // Maybe the escaped-quote form: parseSettings knows how to decode a string holding JSON.
      doc = text;
      if (!text.includes('\\"')) {
        const problemsOut: SettingsProblem[] = [{ path: '', reason: 'file-not-json', message: `${file} is not valid JSON ${describeJsonError(text)}.`, fix: 'Fix the JSON syntax (an editor with the kvvm schema shows where).' }];
        return report(io, json, file, 'file', platform, { ok: false, problems: problemsOut }, []);
      }
    }
  }
  const source = extractSettings(doc);
  const result = parseSettings(source.settings, { platform, env: io.env, ...(io.schemasDir !== undefined ? { schemasDir: io.schemasDir } : {}) });
  const notes = [...source.notes];
  const thv = source.notes.find((n) => n.startsWith('typeHandlerVersion '))?.slice('typeHandlerVersion '.length);
  if (result.ok && thv !== undefined && thv.startsWith('4') && result.config.generation !== '4.0') {
    notes.push('typeHandlerVersion is 4.x but the settings use 3.0-only keys (linkOnRenewal, requireInitialSync, keyExportable): the Microsoft 4.x extension ignores them; kvvm honours them.');
  }
  return report(io, json, file, source.kind, platform, result, notes);
}

function report(io: ValidateIo, json: boolean, file: string, kind: string, platform: string,
  result: ReturnType<typeof parseSettings>, notes: string[]): number {
  if (json) {
    io.stdout(JSON.stringify({ file, source: kind, platform, notes, ...result }, null, 2) + '\n');
    return result.ok ? 0 : 1;
  }
  const out: string[] = [`${file} (${kind}, checked for ${platform})`];
  for (const n of notes) out.push(`note: ${n}`);
  if (result.ok) {
    out.push('OK: ' + summary(result.config, platform).join('\n'));
    if (result.config.warnings.length > 0) {
      out.push(`${result.config.warnings.length} warning${result.config.warnings.length === 1 ? '' : 's'}:`);
      for (const w of result.config.warnings) out.push(`  ${w.path === '' ? '(settings)' : w.path}: ${w.message}`);
    }
  } else {
    out.push(`INVALID: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`);
    out.push(...problemLines(result.problems));
  }
  io.stdout(out.join('\n') + '\n');
  return result.ok ? 0 : 1;
}
