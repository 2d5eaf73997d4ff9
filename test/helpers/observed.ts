/**
 * Observed certificates as settings normalisation produces them (settings/config.ts), for tests that hand one to
 * a store or the engine directly: the source URL fields plus the target of one platform.
 */
import type { LinuxCertificateTarget, ObservedCertificate, WindowsCertificateTarget } from '../../handler/settings/config.js';

export type LinuxObserved = ObservedCertificate & { target: LinuxCertificateTarget };
export type WindowsObserved = ObservedCertificate & { target: WindowsCertificateTarget };

function source(vault: string, name: string): Omit<ObservedCertificate, 'target'> {
  return {
    sourceUrl: `https://${vault}.vault.azure.net/secrets/${name}`,
    vaultUrl: `https://${vault}.vault.azure.net`,
    vaultHost: `${vault}.vault.azure.net`,
    vaultName: vault,
    secretName: name,
  };
}

/** A certificate for the PEM store in `directory`, link "<vault>.<name>" and no acls unless `target` says otherwise. */
export function linuxObserved(vault: string, name: string, directory: string, target: Partial<LinuxCertificateTarget> = {}): LinuxObserved {
  return { ...source(vault, name), target: { platform: 'linux', directory, linkName: `${vault}.${name}`, acls: [], ...target } };
}

/** A certificate for the Windows store `storeLocation\storeName`, no key ACL accounts unless `target` says otherwise. */
export function windowsObserved(
  vault: string,
  name: string,
  storeLocation: WindowsCertificateTarget['storeLocation'],
  storeName: string,
  target: Partial<WindowsCertificateTarget> = {},
): WindowsObserved {
  return { ...source(vault, name), target: { platform: 'windows', storeName, storeLocation, keyExportable: true, accounts: [], ...target } };
}
