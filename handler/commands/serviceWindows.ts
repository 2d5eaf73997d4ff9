/**
 * The Windows parts of `kvvm service`: the certificate store (CryptoAPI/CNG through koffi), its chain check, the
 * http.sys binding move after a renewal, and the PaaS credential. service.ts imports this module only on Windows:
 * on Linux it would load the Windows store's modules and node-forge (its import PFX builder), about 2 MB that the
 * service kept for its whole life without ever using them (bench/, figure 4).
 */
import { hasServerAuthEku } from '../certs/chain.js';
import type { CertificateMaterial } from '../certs/material.js';
import type { SyncLogger } from '../engine/certificateSync.js';
import type { KvvmError } from '../errors.js';
import { windowsTarget, type KvvmConfig, type ObservedCertificate } from '../settings/config.js';
import type { BehaviourProfile } from '../settings/profile.js';
import type { CertificateStore } from '../stores/store.js';
import { windowsChainError } from '../stores/windows/chain.js';
import { createHttpSslApi, moveBindings } from '../stores/windows/httpSslBindings.js';
import { createWindowsStore } from '../stores/windows/windowsStore.js';
import { paasCredentialFor } from '../vault/paasWindows.js';

export const windowsChainCheck = (material: CertificateMaterial, _now: Date, cert: ObservedCertificate): KvvmError | undefined =>
  hasServerAuthEku(material.leaf) ? windowsChainError(material, windowsTarget(cert).storeLocation) : undefined;

/** Opens http.sys's configuration for one move (a rotation is rare; nothing stays open between polls). */
export function moveHttpSysBindings(from: string, to: string): ReturnType<typeof moveBindings> {
  const api = createHttpSslApi();
  try {
    return moveBindings(api, from, to);
  } finally {
    api.close();
  }
}

/** The Windows certificate store as the settings ask for it (`linkOnRenewal` only matters here). */
export function createWindowsStoreFor(options: { linkOnRenewal: boolean; log: SyncLogger; profile: BehaviourProfile }): CertificateStore {
  const { log } = options;
  return createWindowsStore({
    linkOnRenewal: options.linkOnRenewal,
    keyStorage: options.profile.windowsKeyStorage,
    // lifecycle event 1001 outcome (IIS Automatic Rebind), one line per renewal link; the flags of each import
    log: { info: (m: string) => log.info(m), warn: (m: string) => log.warn(m) },
  });
}

/** Windows PaaS variant (clientId + clientCertificateSubjectName): the bootstrap certificate replaces the managed identity. */
export function windowsCredentialFor(config: KvvmConfig, env: Readonly<Record<string, string | undefined>>): ReturnType<typeof paasCredentialFor> {
  return paasCredentialFor(config.authentication, 'win32', env);
}
