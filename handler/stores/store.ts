import type { CertificateMaterial, CertificateVersionId } from '../certs/material.js';
import type { ObservedCertificate } from '../settings/config.js';

/**
 * The contract every certificate store implements (Linux PEM store, Windows certificate store).
 * A shared contract test suite (test/store-contract.ts) runs against each implementation.
 *
 *  1. Never destroy current material until the new one is stored: `install` writes the new version completely
 *     before anything points at it; `activate` switches atomically; `remove` never removes the active version.
 *  2. Installing a version that is already installed is a no-op returning the existing entry (idempotent).
 *  3. "Not found" is not an error: `remove` of an absent version resolves; `list` of an unknown target is [].
 *  4. A failure leaves the store as it was before the call (no partial files visible under final names).
 *  5. Key material is private from its first byte.
 */
export interface InstalledCertificate extends CertificateVersionId {
  thumbprint: string;
  notAfter: Date;
  /** True for the version the stable name (symlink / renewal chain head) points at. */
  active: boolean;
  /** Where it lives, for status and logs: a file path or "LocalMachine\\MY". */
  location: string;
}

export interface CertificateStore {
  /** Short name for logs: "pem" or "windows". */
  readonly kind: string;
  /** Versions of this observed certificate currently installed, newest first by install time. */
  list(cert: ObservedCertificate): Promise<InstalledCertificate[]>;
  /** Store one version (does not make it active). */
  install(cert: ObservedCertificate, id: CertificateVersionId, material: CertificateMaterial): Promise<InstalledCertificate>;
  /**
   * Make `id` the version applications use (Linux: move the symlink; Windows: renewal link from `previous`).
   * `previous` is the version that was active before, if any.
   */
  activate(cert: ObservedCertificate, id: CertificateVersionId, previous: InstalledCertificate | undefined): Promise<void>;
  /** Remove one non-active version. */
  remove(cert: ObservedCertificate, installed: InstalledCertificate): Promise<void>;
  /** Remove everything kvvm installed for this certificate (uninstall). */
  removeAll(cert: ObservedCertificate): Promise<void>;
}
