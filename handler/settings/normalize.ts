/**
 * Logical checks and defaults: a settings object that has the right shape → ONE KvvmConfig.
 *
 * What a setting means depends on the behaviour profile (profile.ts), chosen by the HANDLER version the agent
 * runs, never by which keys the settings happen to use (the detected generation is only reported):
 * - requireInitialSync: 3.x absent/false → 'none' (success once polling starts), true → 'forever' (Windows) or
 *   'bounded' (Linux: 25 attempts, then error); 4.x always 'bounded', and false is refused (removed in 4.0).
 * - pollingIntervalInS: 4.x keeps it within 300-3600 s with a warning; 3.x takes any positive value and warns
 *   below 60 s or above a day. Default 3600.
 * - linkOnRenewal absent → true; 3.x honours false, 4.x refuses it (4.0 always links).
 * - keyExportable (3.x Windows) and pinned versions: honoured by 3.x, refused by 4.x (certificates.ts).
 */
import {
  DEFAULT_POLLING_INTERVAL_S,
  MAX_POLLING_INTERVAL_S,
  MIN_POLLING_INTERVAL_S,
  WARN_ABOVE_POLLING_INTERVAL_S,
  WARN_BELOW_POLLING_INTERVAL_S,
  type InitialSyncMode,
  type KvvmConfig,
  type SettingsWarning,
} from './config.js';
import { profileFor, type BehaviourProfile } from './profile.js';
import { removedIn4 } from './removed.js';
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
  /**
   * The behaviour profile of the running handler version. Callers that know the version (enable, validate
   * --handler-version, deploy with typeHandlerVersion) pass it; without one, kvvm's strict 4.x rules apply.
   */
  profile?: BehaviourProfile;
}

const SMS = '/secretsManagementSettings';

export type NormalizedParts = Omit<KvvmConfig, 'generation'>;

type Sink = { problems: SettingsProblem[]; warnings: SettingsWarning[] };

function pollingInterval(raw: unknown, profile: BehaviourProfile, sink: Sink): number {
  const path = `${SMS}/pollingIntervalInS`;
  const range = profile.clampInterval ? 'between 300 and 3600' : 'such as 3600';
  if (raw === undefined) return DEFAULT_POLLING_INTERVAL_S;
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^\s*-?[0-9]+\s*$/.test(raw)) n = Number(raw.trim());
  else return DEFAULT_POLLING_INTERVAL_S; // wrong type or format: the schema reported it
  if (!Number.isSafeInteger(n)) {
    sink.problems.push(
      problem(path, 'polling-interval-too-large', `pollingIntervalInS ${show(raw)} is too large to be a number of seconds.`, `Use a number of seconds ${range}, e.g. "3600".`),
    );
    return DEFAULT_POLLING_INTERVAL_S;
  }
  if (n <= 0) {
    sink.problems.push(
      problem(
        path,
        'polling-interval-not-positive',
        `pollingIntervalInS is ${show(raw)}; expected a positive number of seconds.`,
        `Use a number of seconds ${range}, e.g. "3600".`,
      ),
    );
    return DEFAULT_POLLING_INTERVAL_S;
  }
  if (!profile.clampInterval) {
    if (n < WARN_BELOW_POLLING_INTERVAL_S || n > WARN_ABOVE_POLLING_INTERVAL_S) {
      sink.warnings.push({
        path,
        message: `pollingIntervalInS ${show(raw)} is ${n < WARN_BELOW_POLLING_INTERVAL_S ? 'below 60 s: the vault is polled very often (throttling risk on large fleets)' : 'above a day: a rotated certificate may not be installed before the old one expires'}; the ${profile.line} profile uses it as given.`,
      });
    }
    return n;
  }
  const clamped = Math.min(MAX_POLLING_INTERVAL_S, Math.max(MIN_POLLING_INTERVAL_S, n));
  if (clamped !== n) {
    sink.warnings.push({
      path,
      message: `pollingIntervalInS ${show(raw)} is outside ${MIN_POLLING_INTERVAL_S}-${MAX_POLLING_INTERVAL_S} s; kvvm polls every ${clamped} s instead of ${n} s.`,
    });
  }
  return clamped;
}

function initialSync(raw: unknown, profile: BehaviourProfile, sink: Sink): InitialSyncMode {
  const path = `${SMS}/requireInitialSync`;
  const b = asBoolean(raw);
  if (b === undefined) return profile.initialSync.absent;
  if (!b) {
    const mode = profile.initialSync.false;
    if (mode === undefined) sink.problems.push(removedIn4(path, 'requireInitialSync', false, profile));
    return mode ?? profile.initialSync.absent;
  }
  if (profile.refuseRemovedSettings) {
    sink.warnings.push({
      path,
      message: 'requireInitialSync was removed in 4.0 and is ignored: 4.x always waits until every certificate is installed (25 attempts with growing backoff, then error).',
    });
  }
  return profile.initialSync.true;
}

function linkOnRenewal(raw: unknown, profile: BehaviourProfile, sink: Sink): boolean {
  const b = asBoolean(raw);
  if (b === undefined) return true;
  if (profile.refuseRemovedSettings) {
    if (!b) sink.problems.push(removedIn4(`${SMS}/linkOnRenewal`, 'linkOnRenewal', false, profile));
    else
      sink.warnings.push({
        path: `${SMS}/linkOnRenewal`,
        message: 'linkOnRenewal was removed in 4.0 and is ignored: 4.x always links a renewed certificate to the one it replaces.',
      });
    return true;
  }
  return b;
}

/** Run every logical check; returns what it could normalise and every problem found. */
export function normalizeSettings(data: Record<string, unknown>, options: NormalizeOptions): { parts: NormalizedParts; problems: SettingsProblem[] } {
  const sink: Sink = { problems: [], warnings: [] };
  const sms = asObject(data['secretsManagementSettings']) ?? {};
  const profile = options.profile ?? profileFor('4.0', options.platform, 'default');

  const defaults: CertificateDefaults = { platform: options.platform, env: options.env, profile };
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
    profile,
    pollingIntervalS: pollingInterval(sms['pollingIntervalInS'], profile, sink),
    linkOnRenewal: linkOnRenewal(sms['linkOnRenewal'], profile, sink),
    initialSync: initialSync(sms['requireInitialSync'], profile, sink),
    observedCertificates,
    authentication: normalizeAuthentication(data['authenticationSettings'], requireInitialSync, options.platform, sink),
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
