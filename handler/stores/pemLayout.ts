import { basename, dirname, join } from 'node:path';
import { EXTRA_FORMATS, extraFormatsOf, type ExtraFormat } from './pemFormats.js';
import { KvvmError } from '../errors.js';
import { linuxTarget, type LinuxCertificateTarget, type ObservedCertificate } from '../settings/config.js';
import { TEMP_PREFIX } from './pemFiles.js';
import { STORE_MARKER } from './storeDirectory.js';

/**
 * Where one certificate's files live in the PEM store and which names are its own: version files
 * "<vault>.<secret>.<version>.PEM" and the link. Every name is checked so that none can leave the directory or
 * take one of kvvm's own names (temp files, the store marker).
 */

/** Key Vault object names (alphanumerics and hyphens) and versions (32 hex); anything else could escape the dir. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,126}$/;

export interface Layout {
  dir: string;
  /** `<vault>.<secret>.`: every version file of this certificate, in every format, starts with it. */
  prefix: string;
  linkPath: string;
  fileName(version: string): string;
  /** The version a directory entry holds, if it is one of this certificate's version files. */
  versionOf(name: string): string | undefined;
  /** Whether a (temp file's) final name belongs to this certificate. */
  owns(finalName: string): boolean;
  /**
   * The version a link target names when kvvm (relative name) or KeyVaultForLinux (absolute path in the same
   * directory) made the link; undefined for any other target, which kvvm then leaves alone.
   */
  linkTargetVersion(target: string): string | undefined;
  cert: ObservedCertificate;
  /** The certificate's Linux target (directory, link, acls, owners, formats). */
  target: LinuxCertificateTarget;
  /** The formats written besides the PEM (settings "formats"). */
  extras: ExtraFormat[];
  extraName(version: string, format: ExtraFormat): string;
  extraLinkName(format: ExtraFormat): string;
  /** Whether a directory entry is one of this certificate's key/crt/pfx version files. */
  isExtraFile(name: string): boolean;
}

export function layoutOf(cert: ObservedCertificate): Layout {
  for (const [what, value] of [
    ['vault name', cert.vaultName],
    ['secret name', cert.secretName],
  ] as const) {
    if (!NAME.test(value)) throw invalidName(what, value);
  }
  const target = linuxTarget(cert);
  const link = target.linkName;
  if (
    link === '' ||
    link === '.' ||
    link === '..' ||
    link.includes('/') ||
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
    /[\u0000-\u001f\u007f]/.test(link) ||
    Buffer.byteLength(link) > 255 ||
    link.startsWith(TEMP_PREFIX) ||
    link.startsWith('-') ||
    link === STORE_MARKER
  ) {
    throw invalidName('symbolic link name', link);
  }
  if (!target.directory.startsWith('/')) throw invalidName('store directory (must be absolute)', target.directory);
  const prefix = `${cert.vaultName}.${cert.secretName}.`;
  return {
    dir: target.directory,
    prefix,
    linkPath: join(target.directory, link),
    cert,
    target,
    fileName(version) {
      if (!NAME.test(version)) throw invalidName('secret version', version);
      return `${prefix}${version}.PEM`;
    },
    versionOf(name) {
      if (!name.startsWith(prefix) || !name.endsWith('.PEM')) return undefined;
      const version = name.slice(prefix.length, -'.PEM'.length);
      return NAME.test(version) ? version : undefined;
    },
    owns: (finalName) => finalName.startsWith(prefix) || finalName === link || EXTRA_FORMATS.some((f) => finalName === `${link}.${f}`),
    extras: extraFormatsOf(target),
    extraName(version, format) {
      if (!NAME.test(version)) throw invalidName('secret version', version);
      return `${prefix}${version}.${format}`;
    },
    extraLinkName: (format) => `${link}.${format}`,
    isExtraFile(name) {
      const match = /^(.*)\.(key|crt|pfx)$/.exec(name);
      if (!match || !match[1]!.startsWith(prefix)) return false;
      return NAME.test(match[1]!.slice(prefix.length));
    },
    linkTargetVersion(linkTarget) {
      const inDir = !linkTarget.includes('/') || (linkTarget.startsWith('/') && dirname(linkTarget) === target.directory);
      if (!inDir) return undefined;
      const name = basename(linkTarget);
      return name.startsWith(prefix) && name.endsWith('.PEM') ? name.slice(prefix.length, -'.PEM'.length) : undefined;
    },
  };
}

function invalidName(what: string, value: string): KvvmError {
  return new KvvmError('store-invalid-name', `Invalid ${what} for the PEM store: "${value}".`, {
    fix: 'Correct the certificate URL or customSymbolicLinkName in the settings.',
  });
}
