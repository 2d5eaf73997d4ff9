/**
 * The PaaS credential wired to the Windows store: the bootstrap certificate is looked up by subject in
 * LocalMachine\My for each assertion (a renewed certificate is picked up without a restart) and signs with its
 * store key. Linux has no PaaS variant (the settings check says so); there this returns undefined.
 */
import type { AuthenticationConfig } from '../settings/config.js';
import { findBootstrapCertificate } from '../platform/win32/bootstrapKey.js';
import { PaasCredential } from './paasCredential.js';

export function paasCredentialFor(authentication: AuthenticationConfig, platform: NodeJS.Platform, env: Readonly<Record<string, string | undefined>>): PaasCredential | undefined {
  const { clientId, clientCertificateSubjectName: subject } = authentication;
  if (platform !== 'win32' || !clientId || !subject) return undefined;
  return new PaasCredential({ clientId, env, signer: () => findBootstrapCertificate(subject) });
}
