/**
 * Logical checks and defaults: a settings object that has the right shape → ONE KvvmConfig.
 *
 * Where generations disagree, 4.0 behaviour is the default and an explicit older setting wins:
 * - requireInitialSync absent → 'bounded' (4.0: 25 attempts, then error); true → 'forever'; false → 'none'.
 * - linkOnRenewal absent → true (4.0 always links); explicit false is honoured.
 * - pollingIntervalInS is kept within 300-3600 s (4.0's 5-60 minutes) with a warning, default 3600.
 * - keyExportable absent → false.
 * The detected generation is reported (status, logs) but does not change these defaults, so moving a template
 * from 3.0 to 4.0 keys never changes behaviour silently.
 */
import {
  DEFAULT_POLLING_INTERVAL_S, MAX_POLLING_INTERVAL_S, MIN_POLLING_INTERVAL_S,
  type InitialSyncMode, type KvvmConfig, type SettingsWarning,
} from './config.js';
import { normalizeAuthentication } from './auth.js';
import { normalizeCertificates, type CertificateDefaults } from './certificates.js';
import { changeCommand } from './consumers.js';
import { normalizeLogging } from './logging.js';
import { problem, show, type SettingsProblem } from './problems.js';
import { asBoolean, asObject, asString } from './values.js';

export interface NormalizeOptions {
  platform: 'linux' | 'win32';
  env: Readonly<Record<string, string | undefined>>;
  /** Given where the service runs (enable, service): onChange executables must exist. Not given when deploying. */
  executableExists?: (path: string) => boolean;
}

const SMS = '/secretsManagementSettings';

export type NormalizedParts = Omit<KvvmConfig, 'generation'>;

function pollingInterval(raw: unknown, sink: { problems: SettingsProblem[]; warnings: SettingsWarning[] }): number {
  const path = `${SMS}/pollingIntervalInS`;
  if (raw === undefined) return DEFAULT_POLLING_INTERVAL_S;
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^\s*-?[0-9]+\s*$/.test(raw)) n = Number(raw.trim());
  else return DEFAULT_POLLING_INTERVAL_S; // wrong type or format: the schema reported it
  if (!Number.isSafeInteger(n)) {
    sink.problems.push(problem(path, 'polling-interval-too-large', `pollingIntervalInS ${show(raw)} is too large to be a number of seconds.`,
      'Use a number of seconds between 300 and 3600, e.g. "3600".'));
    return DEFAULT_POLLING_INTERVAL_S;
  }
  if (n <= 0) {
    sink.problems.push(problem(path, 'polling-interval-not-positive', `pollingIntervalInS is ${show(raw)}; expected a positive number of seconds.`,
      'Use a number of seconds between 300 and 3600, e.g. "3600".'));
    return DEFAULT_POLLING_INTERVAL_S;
  }
  const clamped = Math.min(MAX_POLLING_INTERVAL_S, Math.max(MIN_POLLING_INTERVAL_S, n));
  if (clamped !== n) {
    sink.warnings.push({ path, message: `pollingIntervalInS ${show(raw)} is outside ${MIN_POLLING_INTERVAL_S}-${MAX_POLLING_INTERVAL_S} s; kvvm polls every ${clamped} s instead of ${n} s.` });
  }
  return clamped;
}

function initialSync(raw: unknown): InitialSyncMode {
  const b = asBoolean(raw);
  return b === undefined ? 'bounded' : b ? 'forever' : 'none';
}

/** Run every logical check; returns what it could normalise and every problem found. */
export function normalizeSettings(data: Record<string, unknown>, options: NormalizeOptions): { parts: NormalizedParts; problems: SettingsProblem[] } {
  const sink = { problems: [] as SettingsProblem[], warnings: [] as SettingsWarning[] };
  const sms = asObject(data['secretsManagementSettings']) ?? {};

  const defaults: CertificateDefaults = { platform: options.platform, env: options.env };
  if (options.executableExists) defaults.executableExists = options.executableExists;
  const onChange = sms['onChange'] !== undefined ? changeCommand(sms['onChange'], `${SMS}/onChange`, defaults, sink) : undefined;
  if (onChange) defaults.onChange = onChange;
  const globalName = asString(sms['certificateStoreName']);
  if (globalName !== undefined) defaults.storeName = { value: globalName, path: `${SMS}/certificateStoreName` };
  const globalLocation = asString(sms['certificateStoreLocation']);
  if (globalLocation !== undefined) defaults.storeLocation = { value: globalLocation, path: `${SMS}/certificateStoreLocation` };
  const aclEnabled = asBoolean(sms['aclEnabled']);
  if (aclEnabled !== undefined) defaults.aclEnabled = aclEnabled;

  const list = sms['observedCertificates'];
  const observedCertificates = Array.isArray(list) && list.length > 0 ? normalizeCertificates(list, defaults, sink) : [];
  const logging = normalizeLogging(data['loggingSettings'], options.platform, sink);

  const requireInitialSync = asBoolean(sms['requireInitialSync']);
  const parts: NormalizedParts = {
    pollingIntervalS: pollingInterval(sms['pollingIntervalInS'], sink),
    linkOnRenewal: asBoolean(sms['linkOnRenewal']) ?? true,
    initialSync: initialSync(sms['requireInitialSync']),
    observedCertificates,
    authentication: normalizeAuthentication(data['authenticationSettings'], requireInitialSync, sink),
    warnings: dedupeWarnings(sink.warnings),
  };
  if (logging !== undefined) parts.logging = logging;
  return { parts, problems: sink.problems };
}

/** 1.0 global settings fan out to every certificate; say each thing once. */
function dedupeWarnings(warnings: SettingsWarning[]): SettingsWarning[] {
  const seen = new Set<string>();
  return warnings.filter((w) => {
    const k = `${w.path}\u0000${w.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
