/**
 * Settings problems: the operator-facing unit of "your settings are wrong". Each one names WHERE (a JSON pointer),
 * a stable reason id tests and callers can rely on, WHAT is wrong and expected, and HOW to fix it.
 */
import type { ErrorObject } from 'ajv';
import type { Reason } from '../reasons.js';
import type { SettingsWarning } from './config.js';
import { suggestKey } from './suggest.js';

export interface SettingsProblem {
  /** JSON pointer into the settings, "" for the settings object itself. */
  path: string;
  /** Stable id from the reason catalogue (../reasons.ts), e.g. "unknown-key", "url-certificates-path". */
  reason: Reason;
  /** What is wrong and what was expected. */
  message: string;
  fix: string;
}

/** Reason of an unknown key that resembles no known key: reported as a warning, never as a failure. */
export const UNKNOWN_KEY_IGNORED: Reason = 'unknown-key-ignored';

export function problem(path: string, reason: Reason, message: string, fix: string): SettingsProblem {
  return { path, reason, message, fix };
}

/** JSON pointer segment escaping (RFC 6901). */
export function pointer(...segments: Array<string | number>): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** A value as it should be quoted in a message: short, and never a whole object. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array (${value.length} item${value.length === 1 ? '' : 's'})`;
  if (typeof value === 'object') return 'an object';
  // JSON.parse turns 1e400 into Infinity, which JSON.stringify would show as "null".
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number too large to represent';
  const text = JSON.stringify(value);
  return text.length > 120 ? text.slice(0, 117) + '..."' : text;
}

/** Where a key lives when it is written in the wrong object (a common copy-paste slip). */
const HOME_OF_KEY: ReadonlyMap<string, string> = new Map(
  Object.entries({
    secretsManagementSettings: '',
    authenticationSettings: '',
    observedCertificates: '/secretsManagementSettings',
    pollingIntervalInS: '/secretsManagementSettings',
    requireInitialSync: '/secretsManagementSettings',
    linkOnRenewal: '/secretsManagementSettings',
    msiEndpoint: '/authenticationSettings',
    msiClientId: '/authenticationSettings',
    url: '/secretsManagementSettings/observedCertificates/<n>',
    keyExportable: '/secretsManagementSettings/observedCertificates/<n>',
    accounts: '/secretsManagementSettings/observedCertificates/<n>',
    acls: '/secretsManagementSettings/observedCertificates/<n>',
    customSymbolicLinkName: '/secretsManagementSettings/observedCertificates/<n>',
  }),
);

function typeNames(t: unknown): string {
  const list = Array.isArray(t) ? t.map(String) : [String(t)];
  const words = list.map((n) => (n === 'integer' ? 'whole number' : n === 'object' ? 'JSON object' : n === 'array' ? 'JSON array' : n));
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] ?? ''}` : (words[0] ?? '');
}

function valueAt(root: unknown, path: string): unknown {
  if (path === '') return root;
  let cur: unknown = root;
  for (const raw of path.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function lastSegment(path: string): string {
  const i = path.lastIndexOf('/');
  return path
    .slice(i + 1)
    .replace(/~1/g, '/')
    .replace(/~0/g, '~');
}

function isBooleanEnum(values: unknown): boolean {
  return Array.isArray(values) && values.includes(true) && values.includes(false);
}

const OBSERVED_ITEM = /^\/secretsManagementSettings\/observedCertificates\/\d+$/;

/** One ajv error → one problem, or undefined for errors that only restate another one (if/then wrappers). */
function fromAjvError(err: ErrorObject, data: unknown): SettingsProblem | undefined {
  const at = err.instancePath;
  const value = valueAt(data, at);
  const last = lastSegment(at);
  // Array items read better as accounts[0] than as a bare "0".
  const key = /^\d+$/.test(last) ? `${lastSegment(at.slice(0, at.lastIndexOf('/')))}[${last}]` : last;
  switch (err.keyword) {
    case 'if':
      return undefined;
    case 'additionalProperties': {
      const extra = String((err.params as { additionalProperty?: unknown }).additionalProperty);
      const path = `${at}/${extra.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      const props = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
      const allowed = Object.keys(props).filter((k) => k !== '$schema');
      const guess = suggestKey(extra, allowed);
      const where = at === '' ? 'the settings' : at;
      // A Map, not an object: a key named "__proto__" or "constructor" must not find Object.prototype's members.
      const home = HOME_OF_KEY.get(extra);
      if (guess !== undefined && guess !== extra) {
        const caseOnly = guess.toLowerCase() === extra.toLowerCase();
        return problem(
          path,
          'unknown-key',
          `Unknown key "${extra}" in ${where}; did you mean "${guess}"?${caseOnly ? ' Keys are case-sensitive.' : ''}`,
          `Rename "${extra}" to "${guess}".`,
        );
      }
      if (home !== undefined && home !== at) {
        return problem(
          path,
          'misplaced-key',
          `Key "${extra}" does not belong in ${where}; it belongs in ${home === '' ? 'the top level of the settings' : home}.`,
          `Move "${extra}" into ${home === '' ? 'the top level of the settings' : home}.`,
        );
      }
      // Not a near miss of any key: the Microsoft handler ignores keys it does not know (a template written for a
      // newer version, an extra property), so this becomes a warning in parse.ts and provisioning goes on.
      return problem(
        path,
        UNKNOWN_KEY_IGNORED,
        `Unknown key "${extra}" in ${where} is ignored. Known keys there: ${allowed.join(', ')}.`,
        `Remove "${extra}" if it is not meant for this extension.`,
      );
    }
    case 'required': {
      const missing = String((err.params as { missingProperty?: unknown }).missingProperty);
      const path = `${at}/${missing}`;
      if (missing === 'observedCertificates') {
        return problem(
          path,
          'missing-key',
          `secretsManagementSettings has no "observedCertificates": nothing to observe.`,
          `Add "observedCertificates": ["https://<vault>.vault.azure.net/secrets/<certificate>"] to secretsManagementSettings.`,
        );
      }
      if (missing === 'secretsManagementSettings') {
        return problem(
          path,
          'missing-key',
          'The settings have no "secretsManagementSettings" object.',
          'Add "secretsManagementSettings": {"observedCertificates": [...]} at the top level of the settings.',
        );
      }
      return problem(path, 'missing-key', `${at === '' ? 'The settings' : at} has no "${missing}".`, `Add "${missing}".`);
    }
    case 'type': {
      if (isBooleanEnum((err.parentSchema as { enum?: unknown } | undefined)?.enum)) {
        return problem(at, 'invalid-boolean', `${key} is ${show(value)}; expected true or false (a JSON boolean, or the string "true"/"false").`, `Set "${key}" to true or false.`);
      }
      const expected = typeNames((err.params as { type?: unknown }).type);
      if (OBSERVED_ITEM.test(at)) {
        return problem(
          at,
          'wrong-type',
          `Observed certificate entry is ${show(value)}; expected a URL string (1.0 form) or an object with "url" (3.0/4.0 form).`,
          'Write the entry as "https://<vault>.vault.azure.net/secrets/<certificate>" or {"url": "https://..."}.',
        );
      }
      if (key === 'pollingIntervalInS') {
        return problem(
          at,
          'wrong-type',
          `pollingIntervalInS is ${show(value)}; expected a whole number of seconds (a number or a string such as "3600").`,
          'Write a whole number of seconds between 300 and 3600, e.g. "pollingIntervalInS": "3600".',
        );
      }
      if (key === 'observedCertificates' && typeof value === 'string') {
        return problem(
          at,
          'wrong-type',
          `observedCertificates is the string ${show(value)}; expected a JSON array.`,
          'Wrap the URL(s) in an array: "observedCertificates": ["https://<vault>.vault.azure.net/secrets/<certificate>"]. In an ARM template make the parameter of type array.',
        );
      }
      return problem(at, 'wrong-type', `${key || 'The settings'} is ${show(value)}; expected a ${expected}.`, `Change ${at || 'the settings'} to a ${expected}.`);
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues?: unknown }).allowedValues;
      if (isBooleanEnum(allowed)) {
        return problem(at, 'invalid-boolean', `${key} is ${show(value)}; expected true or false (a JSON boolean, or the string "true"/"false").`, `Set "${key}" to true or false.`);
      }
      const list = Array.isArray(allowed) ? allowed.map((v) => JSON.stringify(v)).join(', ') : '';
      return problem(at, 'invalid-value', `${key} is ${show(value)}; expected one of ${list}.`, `Set "${key}" to one of ${list}.`);
    }
    case 'pattern':
      if (key === 'pollingIntervalInS') {
        return problem(
          at,
          'invalid-number',
          `pollingIntervalInS is ${show(value)}, which is not a whole number of seconds.`,
          'Write digits only, e.g. "pollingIntervalInS": "3600" (between 300 and 3600).',
        );
      }
      return problem(at, 'invalid-format', `${key} is ${show(value)}; it does not have the expected format.`, `Correct "${key}".`);
    case 'minItems':
      if (key === 'observedCertificates') {
        return problem(
          at,
          'nothing-to-observe',
          'observedCertificates is an empty array: there is nothing to observe.',
          'List at least one certificate: "observedCertificates": ["https://<vault>.vault.azure.net/secrets/<certificate>"], or remove the extension.',
        );
      }
      return problem(at, 'empty-value', `${key} is empty.`, `Give "${key}" at least one entry or remove it.`);
    case 'minLength':
      return problem(at, 'empty-value', `${key} is an empty string.`, `Give "${key}" a value or remove it.`);
    case 'maxLength': {
      const limit = Number((err.params as { limit?: unknown }).limit);
      return problem(at, 'too-long', `${key} is ${typeof value === 'string' ? value.length : '?'} characters long; at most ${limit} are allowed.`, `Shorten "${key}".`);
    }
    case 'maxItems': {
      const limit = Number((err.params as { limit?: unknown }).limit);
      return problem(at, 'too-many-items', `${key} has ${Array.isArray(value) ? value.length : '?'} entries; at most ${limit} are allowed.`, `Shorten "${key}".`);
    }
    case 'minProperties':
      return problem(
        at,
        'empty-value',
        `${at} is an empty object; expected at least one of its keys.`,
        at.includes('/acls/') ? 'Give each ACL entry a "user", a "group" or both, or remove the entry.' : `Fill in ${at} or remove it.`,
      );
    case 'minimum':
    case 'maximum': {
      const s = err.parentSchema as { minimum?: number; maximum?: number } | undefined;
      const range = `${s?.minimum ?? '…'} to ${s?.maximum ?? '…'}`;
      return problem(at, 'out-of-range', `${key} is ${show(value)}; expected ${range}.`, `Set "${key}" to a value from ${range}.`);
    }
    case 'uniqueItems':
      return problem(at, 'duplicate-value', `${key} lists the same value twice.`, `Remove the repeated value from "${key}".`);
    default:
      // Every other schema rule (the schemas use none today besides `if`): one catalogue reason, ajv's words.
      return problem(at, 'schema-violation', `${at || 'The settings'} ${err.message ?? 'is invalid'}.`, `Correct ${at || 'the settings'}.`);
  }
}

/** ajv errors → problems, one per path+reason (ajv with allErrors repeats itself for union types). */
export function problemsFromAjv(errors: readonly ErrorObject[] | null | undefined, data: unknown): SettingsProblem[] {
  const out: SettingsProblem[] = [];
  const seenPaths = new Set<string>();
  for (const err of errors ?? []) {
    const p = fromAjvError(err, data);
    if (!p) continue;
    // A value of the wrong type also fails enum/pattern: the first error for a path says it best.
    if (seenPaths.has(p.path)) continue;
    seenPaths.add(p.path);
    out.push(p);
  }
  return out;
}

/**
 * Problems as status text: one line "path: message Fix: fix" each, as many as fit in `maxChars`, then how many
 * were left out. The agent truncates the top-level status message at 1024 characters.
 */
export function formatProblems(problems: readonly SettingsProblem[], options: { maxChars?: number } = {}): string {
  const maxChars = options.maxChars ?? 1000;
  const header = `${problems.length} settings problem${problems.length === 1 ? '' : 's'}:`;
  const lines: string[] = [header];
  let used = header.length;
  let shown = 0;
  for (const p of problems) {
    const line = `${p.path === '' ? '(settings)' : p.path}: ${p.message} Fix: ${p.fix}`;
    const remaining = problems.length - shown - 1;
    const tail = remaining > 0 ? `\n(and ${remaining} more; run "kvvm validate" for the full list)`.length : 0;
    if (used + 1 + line.length + tail > maxChars) {
      if (shown === 0) {
        // Always show the first problem, shortened, so the status never says only "N problems".
        const room = Math.max(20, maxChars - used - 1 - (problems.length > 1 ? 60 : 0));
        lines.push(line.slice(0, room - 1) + '…');
        shown = 1;
      }
      break;
    }
    lines.push(line);
    used += 1 + line.length;
    shown++;
  }
  if (shown < problems.length) lines.push(`(and ${problems.length - shown} more; run "kvvm validate" for the full list)`);
  return lines.join('\n');
}

/** Warnings as status text, same budget rules as formatProblems ("path: message" per line). */
export function formatWarnings(warnings: readonly SettingsWarning[], options: { maxChars?: number } = {}): string {
  const maxChars = options.maxChars ?? 1000;
  const lines: string[] = [];
  let used = 0;
  for (const [i, w] of warnings.entries()) {
    const line = `${w.path === '' ? '(settings)' : w.path}: ${w.message}`;
    const rest = warnings.length - i - 1;
    if (used + line.length + 1 + (rest > 0 ? 40 : 0) > maxChars) {
      lines.push(`(and ${warnings.length - i} more warnings)`);
      break;
    }
    lines.push(line);
    used += line.length + 1;
  }
  return lines.join('\n');
}
