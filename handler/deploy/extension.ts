/**
 * What `kvvm deploy` sends: the extension resource (pure functions, no network), plus the OS inference used
 * when --os is not given, and the settings check that runs BEFORE any request.
 */
import { mergeSettings } from '../protocol/settingsFile.js';
import { formatProblems, formatWarnings, parseSettings } from '../settings/index.js';
import { profileFor } from '../settings/profile.js';
import type { KvvmConfig } from '../settings/config.js';

export type OsKind = 'linux' | 'windows';
export type TargetKind = 'vm' | 'vmss';

export const EXTENSION_PUBLISHER = 'Microsoft.Azure.KeyVault';
export const DEFAULT_TYPE_HANDLER_VERSION = '3.0';

export function extensionType(os: OsKind): 'KeyVaultForLinux' | 'KeyVaultForWindows' {
  return os === 'windows' ? 'KeyVaultForWindows' : 'KeyVaultForLinux';
}

export interface ExtensionPlan {
  name: string;
  publisher: string;
  type: string;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  enableAutomaticUpgrade: boolean;
  /** Public settings as sent (an OBJECT, never a JSON string: that is the double-encoding trap). */
  settings: Record<string, unknown>;
  protectedSettings?: Record<string, unknown>;
  /** VMSS only: extensions ours waits for. */
  provisionAfterExtensions?: string[];
}

export interface PlanExtensionOptions {
  os: OsKind;
  name?: string;
  settings: Record<string, unknown>;
  protectedSettings?: Record<string, unknown>;
  typeHandlerVersion?: string;
  autoUpgradeMinorVersion?: boolean;
  enableAutomaticUpgrade?: boolean;
  provisionAfterExtensions?: string[];
}

/** The editor hint "$schema" is for people, not for the extension: it is not sent. */
function withoutSchemaKey(settings: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = settings;
  return rest;
}

export function planExtension(o: PlanExtensionOptions): ExtensionPlan {
  const type = extensionType(o.os);
  const plan: ExtensionPlan = {
    name: o.name ?? type,
    publisher: EXTENSION_PUBLISHER,
    type,
    typeHandlerVersion: o.typeHandlerVersion ?? DEFAULT_TYPE_HANDLER_VERSION,
    autoUpgradeMinorVersion: o.autoUpgradeMinorVersion ?? true,
    enableAutomaticUpgrade: o.enableAutomaticUpgrade ?? false,
    settings: withoutSchemaKey(o.settings),
  };
  if (o.protectedSettings !== undefined) plan.protectedSettings = o.protectedSettings;
  if (o.provisionAfterExtensions !== undefined && o.provisionAfterExtensions.length > 0) {
    plan.provisionAfterExtensions = [...o.provisionAfterExtensions];
  }
  return plan;
}

const WINDOWS_LOCATIONS = new Set(['localmachine', 'currentuser']);

/**
 * Best guess of the target OS from the settings alone (used only when --os is absent): Windows store names
 * (LocalMachine/CurrentUser), `accounts`/`keyExportable`/`certificateStoreName` mean Windows; an absolute path
 * store, `acls` or `customSymbolicLinkName` mean Linux. Undefined when the settings say nothing either way.
 */
export function inferOs(settings: unknown): OsKind | undefined {
  const sms = (settings as { secretsManagementSettings?: Record<string, unknown> } | null)?.secretsManagementSettings;
  if (!sms || typeof sms !== 'object') return undefined;
  const votes = { linux: 0, windows: 0 };
  const look = (o: Record<string, unknown>): void => {
    const loc = o['certificateStoreLocation'];
    if (typeof loc === 'string') {
      if (WINDOWS_LOCATIONS.has(loc.toLowerCase())) votes.windows += 1;
      else if (loc.startsWith('/')) votes.linux += 1;
    }
    if ('accounts' in o || 'keyExportable' in o || 'certificateStoreName' in o) votes.windows += 1;
    if ('acls' in o || 'customSymbolicLinkName' in o) votes.linux += 1;
  };
  look(sms);
  const certs = sms['observedCertificates'];
  if (Array.isArray(certs)) for (const c of certs) if (c && typeof c === 'object') look(c as Record<string, unknown>);
  if (votes.windows === votes.linux) return undefined;
  return votes.windows > votes.linux ? 'windows' : 'linux';
}

export type SettingsCheck = { ok: true; config: KvvmConfig; warnings: string } | { ok: false; report: string };

/** The same verdict the handler will reach on the VM, for public settings with protected settings merged over them. */
export function checkDeploySettings(
  settings: Record<string, unknown>,
  protectedSettings: Record<string, unknown> | undefined,
  os: OsKind,
  env: Record<string, string | undefined>,
  typeHandlerVersion: string = DEFAULT_TYPE_HANDLER_VERSION,
): SettingsCheck {
  const merged = protectedSettings === undefined ? settings : mergeSettings(settings, protectedSettings);
  const platform = os === 'windows' ? 'win32' : 'linux';
  // The verdict of the version that will run them: 3.x and 4.x accept different settings (settings/profile.ts).
  const parsed = parseSettings(merged, { platform, env, profile: profileFor(typeHandlerVersion, platform, 'document') });
  if (!parsed.ok) return { ok: false, report: formatProblems(parsed.problems, { maxChars: 100_000 }) };
  const warnings = parsed.config.warnings.length > 0 ? formatWarnings(parsed.config.warnings, { maxChars: 100_000 }) : '';
  return { ok: true, config: parsed.config, warnings };
}
