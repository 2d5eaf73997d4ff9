/**
 * Getting from "whatever the agent handed us" to a settings object. The classic failure is PowerShell
 * double-encoding: -SettingString with an already-JSON string, or a string built with escaped quotes, arrives as
 * a JSON *string* whose content is the JSON object (the Microsoft extension then fails with "not an object").
 * kvvm decodes it, accepts it, and says how to deploy it properly.
 */
import type { SettingsWarning } from './config.js';
import { describeJsonError } from '../jsonError.js';
import { problem, show, type SettingsProblem } from './problems.js';

const HASHTABLE_FIX =
  'In PowerShell pass the settings as a hashtable (Set-AzVMExtension -Settings @{ secretsManagementSettings = @{ ... } }) ' +
  'or pass the raw file text with -SettingString (Get-Content -Raw settings.json) without extra quoting or backslashes.';

export type DecodeResult = { ok: true; value: Record<string, unknown>; warnings: SettingsWarning[] } | { ok: false; problems: SettingsProblem[] };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return `a ${typeof v}`;
}

/** JSON.parse that also accepts the `{\"a\": 1}` form (quotes escaped once too often). */
function parseLenient(text: string): { ok: true; value: unknown; unescaped: boolean } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown, unescaped: false };
  } catch {
    const error = describeJsonError(text);
    if (text.includes('\\"')) {
      try {
        return { ok: true, value: JSON.parse(text.replace(/\\"/g, '"')) as unknown, unescaped: true };
      } catch {
        // fall through: report the original parse error, it points into what the operator wrote
      }
    }
    return { ok: false, error };
  }
}

/**
 * Decode a string that should contain the settings JSON, at most twice (string-in-string). `path` is where the
 * string was found ("" for the whole settings).
 */
function decodeJsonString(text: string, path: string): { ok: true; value: Record<string, unknown>; warning: SettingsWarning } | { ok: false; problem: SettingsProblem } {
  const where = path === '' ? 'The settings are' : `${path} is`;
  let current: unknown = text;
  let unescaped = false;
  for (let depth = 0; depth < 2 && typeof current === 'string'; depth++) {
    const trimmed = current.trim();
    const parsed = parseLenient(trimmed);
    if (!parsed.ok) {
      return {
        ok: false,
        problem: problem(path, 'settings-not-json', `${where} a string, not a JSON object, and the string is not valid JSON ${parsed.error}.`, HASHTABLE_FIX),
      };
    }
    unescaped ||= parsed.unescaped;
    current = parsed.value;
  }
  if (!isPlainObject(current)) {
    return {
      ok: false,
      problem: problem(path, 'settings-not-object', `${where} a JSON-encoded string whose content is ${kindOf(current)}, not a JSON object.`, HASHTABLE_FIX),
    };
  }
  return {
    ok: true,
    value: current,
    warning: {
      path,
      message: `${where} a JSON-encoded string instead of a JSON object (PowerShell double encoding${unescaped ? ' with backslash-escaped quotes' : ''}); kvvm decoded it. Fix: ${HASHTABLE_FIX}`,
    },
  };
}

/** The merged handler settings → a plain object, or the problems that make that impossible. */
export function decodeSettings(raw: unknown): DecodeResult {
  const warnings: SettingsWarning[] = [];
  let value: unknown = raw;
  if (typeof value === 'string') {
    if (value.trim() === '') value = null;
    else {
      const d = decodeJsonString(value, '');
      if (!d.ok) return { ok: false, problems: [d.problem] };
      warnings.push(d.warning);
      value = d.value;
    }
  }
  if (value === null || value === undefined || (isPlainObject(value) && Object.keys(value).length === 0)) {
    return {
      ok: false,
      problems: [
        problem(
          '',
          'settings-empty',
          'The extension has no settings: there are no certificates to observe.',
          'Deploy the extension with settings such as {"secretsManagementSettings": {"observedCertificates": [{"url": "https://<vault>.vault.azure.net/secrets/<certificate>"}]}}.',
        ),
      ],
    };
  }
  if (!isPlainObject(value)) {
    return {
      ok: false,
      problems: [
        problem(
          '',
          'settings-not-object',
          `The settings are ${typeof value === 'object' ? kindOf(value) : `${kindOf(value)} (${show(value)})`}; expected a JSON object.`,
          'Make the settings a JSON object with a "secretsManagementSettings" key. ' + HASHTABLE_FIX,
        ),
      ],
    };
  }
  // The same slip one level down: a hashtable whose value is a JSON string.
  const out: Record<string, unknown> = { ...value };
  for (const key of ['secretsManagementSettings', 'authenticationSettings']) {
    const inner = out[key];
    if (typeof inner === 'string' && /^\s*[{"]/.test(inner)) {
      const d = decodeJsonString(inner, `/${key}`);
      if (!d.ok) return { ok: false, problems: [d.problem] };
      warnings.push(d.warning);
      out[key] = d.value;
    }
  }
  return { ok: true, value: out, warnings };
}
