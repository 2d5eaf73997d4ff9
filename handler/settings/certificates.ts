/**
 * observedCertificates (both forms) → ObservedCertificate[]. Platform rules live here: Windows store locations
 * are case-sensitive names, Linux ones are directories; each platform warns about the other's keys instead of
 * failing, because one template is often shared by Windows and Linux scale sets.
 */
import { posix } from 'node:path';
import {
  DEFAULT_LINUX_STORE,
  type CertificateTarget,
  type ChangeCommand,
  type FileAcl,
  type ObservedCertificate,
  type SettingsWarning,
  type WindowsStoreLocation,
} from './config.js';
import { pointer, problem, show, type SettingsProblem } from './problems.js';
import type { BehaviourProfile } from './profile.js';
import { removedIn4 } from './removed.js';
import { accountNameProblem } from './accountName.js';
import { isSharedDirectory } from './sharedDirectories.js';
import { parseObservedUrl } from './url.js';
import { asBoolean, asObject, asString } from './values.js';
import { changeCommand, consumerSettings, type ConsumerDefaults } from './consumers.js';

export interface CertificateDefaults extends ConsumerDefaults {
  platform: 'linux' | 'win32';
  env: Readonly<Record<string, string | undefined>>;
  /** 1.0 global values (or 3.0/4.0 defaults), with the path they came from. */
  storeName?: { value: string; path: string };
  storeLocation?: { value: string; path: string };
  /** Linux aclEnabled: explicit false turns acls off. */
  aclEnabled?: boolean;
  profile: BehaviourProfile;
  /** secretsManagementSettings.onChange, already checked: the default for entries without their own. */
  onChange?: ChangeCommand;
}

const WINDOWS_LOCATIONS = ['LocalMachine', 'CurrentUser'] as const;
/** The PEM store's own names (pemFiles.ts TEMP_PREFIX, storeDirectory.ts STORE_MARKER): no link may take them. */
const TEMP_FILE_PREFIX = '.kvvm-tmp.';
const STORE_MARKER_NAME = '.kvvm-store';
const LIST = '/secretsManagementSettings/observedCertificates';

interface Sink {
  problems: SettingsProblem[];
  warnings: SettingsWarning[];
}

function isWindowsLocation(value: string): value is WindowsStoreLocation {
  return (WINDOWS_LOCATIONS as readonly string[]).includes(value);
}

/** certificateStoreLocation on Windows: a store location, spelled exactly. */
function windowsStoreLocation(value: string, path: string, sink: Sink): WindowsStoreLocation | undefined {
  if (isWindowsLocation(value)) return value;
  const right = WINDOWS_LOCATIONS.find((w) => w.toLowerCase() === value.trim().toLowerCase());
  if (right) {
    sink.problems.push(
      problem(
        path,
        'store-location-case',
        `certificateStoreLocation ${show(value)} is not valid: it is case-sensitive; expected "LocalMachine" or "CurrentUser".`,
        `Write "${right}" exactly.`,
      ),
    );
  } else {
    sink.problems.push(
      problem(
        path,
        'invalid-store-location',
        `certificateStoreLocation ${show(value)} is not a Windows store location; expected "LocalMachine" or "CurrentUser" (case-sensitive).`,
        'Set certificateStoreLocation to "LocalMachine" (the default) or "CurrentUser".',
      ),
    );
  }
  return undefined;
}

/** certificateStoreLocation on Linux: an absolute, private-able directory (a Windows location falls back to the default). */
function linuxStoreDirectory(value: string, path: string, sink: Sink): string | undefined {
  if ((WINDOWS_LOCATIONS as readonly string[]).some((w) => w.toLowerCase() === value.trim().toLowerCase())) {
    sink.warnings.push({ path, message: `certificateStoreLocation ${show(value)} is a Windows store location; on Linux kvvm uses the directory ${DEFAULT_LINUX_STORE}.` });
    return DEFAULT_LINUX_STORE;
  }
  if (!value.startsWith('/') || value.includes('\0')) {
    sink.problems.push(
      problem(
        path,
        'store-location-not-absolute',
        `certificateStoreLocation ${show(value)} is not an absolute Linux directory path.`,
        `Use an absolute directory such as "${DEFAULT_LINUX_STORE}", or remove the key for that default.`,
      ),
    );
    return undefined;
  }
  if (value.split('/').some((s) => s === '..' || s === '.')) {
    sink.problems.push(
      problem(path, 'store-location-not-absolute', `certificateStoreLocation ${show(value)} contains "." or ".." segments.`, 'Write the directory without "." and ".." segments.'),
    );
    return undefined;
  }
  const normalized = posix.normalize(value).replace(/\/+$/, '');
  if (normalized !== '' && isSharedDirectory(normalized)) {
    sink.problems.push(
      problem(
        path,
        'store-location-shared',
        `certificateStoreLocation ${show(value)} is a directory the whole system shares: kvvm keeps its store private (mode 700) and would lock other software out of it, or mix private keys into a public place.`,
        `Use a dedicated directory such as "${DEFAULT_LINUX_STORE}" (the default) or a new subdirectory, e.g. "${normalized === '/' ? '' : normalized}/kvvm".`,
      ),
    );
    return undefined;
  }
  if (normalized === '') {
    // kvvm makes the store directory mode 700: on "/" that would lock everyone out of the machine.
    sink.problems.push(
      problem(
        path,
        'store-location-root',
        'certificateStoreLocation is "/": the store directory is made private (mode 700), which must never be the root directory.',
        `Use a dedicated directory such as "${DEFAULT_LINUX_STORE}".`,
      ),
    );
    return undefined;
  }
  return normalized;
}

/** The store location of one entry on the settings' platform (its default when absent); undefined after a problem. */
function storePlace(
  raw: string | undefined,
  path: string,
  d: CertificateDefaults,
  sink: Sink,
): { platform: 'windows'; storeLocation: WindowsStoreLocation } | { platform: 'linux'; directory: string } | undefined {
  if (d.platform === 'win32') {
    const storeLocation = raw === undefined ? 'LocalMachine' : windowsStoreLocation(raw, path, sink);
    return storeLocation === undefined ? undefined : { platform: 'windows', storeLocation };
  }
  const directory = raw === undefined ? DEFAULT_LINUX_STORE : linuxStoreDirectory(raw, path, sink);
  return directory === undefined ? undefined : { platform: 'linux', directory };
}

function linkName(entry: Record<string, unknown>, at: string, vaultName: string, secretName: string, d: CertificateDefaults, sink: Sink): string {
  const fallback = `${vaultName}.${secretName}`;
  const custom = asString(entry['customSymbolicLinkName']);
  if (custom === undefined) return fallback;
  const path = `${at}/customSymbolicLinkName`;
  if (d.platform === 'win32') {
    sink.warnings.push({ path, message: 'customSymbolicLinkName is a Linux setting; it is ignored on Windows.' });
    return fallback;
  }
  const name = custom.trim();
  const why = linkNameProblem(custom, name);
  if (why !== undefined) {
    sink.problems.push(
      problem(
        path,
        'invalid-link-name',
        `customSymbolicLinkName ${show(custom)} is not usable: ${why}.`,
        `Use a plain file name such as "${fallback}"; the link is always created inside certificateStoreLocation.`,
      ),
    );
  }
  return name;
}

/** Why a link name cannot be used, or undefined. Kept in step with what the PEM store accepts (pemStore.ts). */
function linkNameProblem(raw: string, name: string): string | undefined {
  if (name === '') return 'it is empty';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
  if (/[\u0000-\u001f\u007f]/.test(raw)) return 'it contains a control character (a newline or tab, for example), which breaks every tool that lists file names';
  if (name.includes('/')) return 'it contains "/"; it must be a file name, not a path';
  if (name === '.' || name === '..') return `"${name}" is a directory`;
  if (name.startsWith('-')) return 'it starts with "-", which commands read as an option (rm -rf)';
  if (name.startsWith(TEMP_FILE_PREFIX)) return `names starting with "${TEMP_FILE_PREFIX}" are kvvm's temporary files, which kvvm deletes`;
  if (name === STORE_MARKER_NAME) return `"${STORE_MARKER_NAME}" is the file marking a directory kvvm manages`;
  if (Buffer.byteLength(name) > 255) return 'it is longer than 255 bytes';
  return undefined;
}

function acls(entry: Record<string, unknown>, at: string, d: CertificateDefaults, sink: Sink): FileAcl[] {
  const list = entry['acls'];
  if (!Array.isArray(list)) return [];
  if (d.platform === 'win32') {
    if (list.length > 0) sink.warnings.push({ path: `${at}/acls`, message: 'acls is a Linux setting; it is ignored on Windows (use "accounts").' });
    return [];
  }
  if (d.aclEnabled === false && list.length > 0) {
    sink.warnings.push({ path: `${at}/acls`, message: 'acls are ignored because secretsManagementSettings.aclEnabled is false.' });
    return [];
  }
  const out: FileAcl[] = [];
  list.forEach((item, j) => {
    const o = asObject(item);
    if (!o) return; // the schema reported it
    const acl: FileAcl = {};
    for (const k of ['user', 'group'] as const) {
      const v = asString(o[k]);
      if (v === undefined) continue;
      const why = accountNameProblem(v);
      if (why !== undefined) {
        sink.problems.push(
          problem(
            `${at}/acls/${j}/${k}`,
            'invalid-acl-name',
            `acls ${k} ${show(v)} is not a valid Linux ${k} name: ${why}.`,
            `Write the ${k} name exactly as "getent ${k === 'user' ? 'passwd' : 'group'}" shows it, or a numeric ${k === 'user' ? 'uid' : 'gid'}.`,
          ),
        );
        continue;
      }
      acl[k] = v;
    }
    if (acl.user !== undefined || acl.group !== undefined) out.push(acl);
  });
  return out;
}

function one(entry: unknown, i: number, d: CertificateDefaults, sink: Sink): ObservedCertificate | undefined {
  const at = pointer('secretsManagementSettings', 'observedCertificates', i);
  const obj = asObject(entry);
  const rawUrl = typeof entry === 'string' ? entry : asString(obj?.['url']);
  if (rawUrl === undefined) return undefined; // wrong type: the schema reported it
  const urlPath = obj ? `${at}/url` : at;
  const parsed = parseObservedUrl(rawUrl, d.env);
  if (!parsed.ok) {
    sink.problems.push(problem(urlPath, parsed.reason, parsed.message, parsed.fix));
    return undefined;
  }
  for (const w of parsed.warnings) sink.warnings.push({ path: urlPath, message: w });
  const own = obj ?? {};

  const nameValue = asString(own['certificateStoreName']);
  const certificateStoreName = (nameValue ?? d.storeName?.value ?? 'MY').trim();

  const locValue = asString(own['certificateStoreLocation']);
  const locPath = locValue !== undefined ? `${at}/certificateStoreLocation` : (d.storeLocation?.path ?? '');
  const locRaw = locValue ?? d.storeLocation?.value;
  const place = storePlace(locRaw, locPath, d, sink);

  const accounts = Array.isArray(own['accounts']) ? own['accounts'].filter((a): a is string => typeof a === 'string').map((a) => a.trim()) : [];
  if (d.platform === 'linux' && accounts.length > 0) {
    sink.warnings.push({ path: `${at}/accounts`, message: 'accounts is a Windows setting; it is ignored on Linux (use "acls").' });
  }
  const link = linkName(own, at, parsed.vaultName, parsed.secretName, d, sink);
  const fileAcls = acls(own, at, d, sink);
  const { updateBindings, ...fileSettings } = consumerSettings(own, at, d, sink);
  const onChange = own['onChange'] !== undefined ? changeCommand(own['onChange'], `${at}/onChange`, d, sink) : d.onChange;
  if (place === undefined) return undefined;
  // Read on both platforms: 4.x refuses keyExportable true on Linux too, and Linux warns that it is ignored.
  const exportable = keyExportable(own, at, d, sink);
  const target: CertificateTarget =
    place.platform === 'windows'
      ? {
          platform: 'windows',
          storeName: certificateStoreName,
          storeLocation: place.storeLocation,
          keyExportable: exportable,
          accounts,
          ...(updateBindings ? { updateBindings } : {}),
        }
      : { platform: 'linux', directory: place.directory, linkName: link, acls: fileAcls, ...fileSettings };

  const cert: ObservedCertificate = {
    sourceUrl: rawUrl,
    vaultUrl: parsed.vaultUrl,
    vaultHost: parsed.vaultHost,
    vaultName: parsed.vaultName,
    secretName: parsed.secretName,
    target,
  };
  if (onChange !== undefined) cert.onChange = onChange;
  if (parsed.pinnedVersion !== undefined) {
    if (d.profile.refuseRemovedSettings) {
      sink.problems.push(removedIn4(urlPath, 'pinnedVersion', parsed.pinnedVersion, d.profile));
      return undefined;
    }
    cert.pinnedVersion = parsed.pinnedVersion;
  }
  return cert;
}

/** 3.x Windows honours keyExportable; 4.x refuses true (removed in 4.0) and notes that false changes nothing. */
function keyExportable(own: Record<string, unknown>, at: string, d: CertificateDefaults, sink: Sink): boolean {
  const b = asBoolean(own['keyExportable']);
  if (b === undefined) return false;
  const path = `${at}/keyExportable`;
  if (d.profile.refuseRemovedSettings) {
    if (b) sink.problems.push(removedIn4(path, 'keyExportable', b, d.profile));
    else sink.warnings.push({ path, message: 'keyExportable was removed in 4.0 and is ignored: 4.x keys are never exportable.' });
    return false;
  }
  if (b && d.platform === 'linux') {
    sink.warnings.push({ path, message: 'keyExportable is a Windows setting; PEM files on Linux always hold the key.' });
  }
  return b;
}

/** What two entries must not share: the Windows store slot, or the Linux symlink. */
function targetKey(c: ObservedCertificate): string {
  const t = c.target;
  return t.platform === 'windows'
    ? [c.vaultHost, c.secretName.toLowerCase(), c.pinnedVersion ?? '', t.storeName.toUpperCase(), t.storeLocation].join('|')
    : [t.directory, t.linkName].join('|');
}

/** Where an entry installs, for the duplicate message. */
function describeTarget(c: ObservedCertificate): string {
  const t = c.target;
  return t.platform === 'windows' ? `into the same store (${t.storeLocation}\\${t.storeName})` : `the same symlink ${t.directory}/${t.linkName}`;
}

function sameSettings(a: ObservedCertificate, b: ObservedCertificate): boolean {
  const strip = (c: ObservedCertificate): string => JSON.stringify({ ...c, sourceUrl: '', secretName: c.secretName.toLowerCase() });
  return strip(a) === strip(b);
}

/** Normalise every entry; `list` is observedCertificates as written. */
export function normalizeCertificates(list: unknown[], d: CertificateDefaults, sink: Sink): ObservedCertificate[] {
  const firstKind = typeof list[0] === 'string' ? 'string' : 'object';
  const mixedAt = list.findIndex((e) => (typeof e === 'string' ? 'string' : 'object') !== firstKind);
  if (mixedAt >= 0) {
    sink.problems.push(
      problem(
        `${LIST}/${mixedAt}`,
        'mixed-observed-certificates',
        `observedCertificates mixes URL strings (1.0 form) and objects (3.0/4.0 form); entry ${mixedAt} is ${show(list[mixedAt])} while entry 0 is ${show(list[0])}.`,
        'Use one form for every entry, preferably objects: {"url": "https://<vault>.vault.azure.net/secrets/<certificate>"}.',
      ),
    );
    return [];
  }
  const out: ObservedCertificate[] = [];
  const byTarget = new Map<string, { cert: ObservedCertificate; index: number }>();
  list.forEach((entry, i) => {
    const cert = one(entry, i, d, sink);
    if (!cert) return;
    const key = targetKey(cert);
    const earlier = byTarget.get(key);
    const at = `${LIST}/${i}`;
    if (earlier && sameSettings(earlier.cert, cert)) {
      sink.warnings.push({ path: at, message: `Entry ${i} repeats entry ${earlier.index} (${cert.sourceUrl.trim()}); the duplicate is ignored.` });
      return;
    }
    if (earlier) {
      const what =
        d.platform === 'win32'
          ? `installs the same certificate ${describeTarget(cert)} as entry ${earlier.index} with different settings`
          : `uses ${describeTarget(cert)} as entry ${earlier.index}`;
      sink.problems.push(
        problem(
          at,
          d.platform === 'win32' ? 'duplicate-certificate' : 'duplicate-link-name',
          `observedCertificates entry ${i} ${what}.`,
          d.platform === 'win32' ? 'Merge the two entries into one.' : 'Give one of them a different customSymbolicLinkName or certificateStoreLocation, or remove the duplicate.',
        ),
      );
      return;
    }
    byTarget.set(key, { cert, index: i });
    out.push(cert);
  });
  return out;
}
