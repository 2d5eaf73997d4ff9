/**
 * Settings KeyVaultForWindows 4.0 removed ("Upgrading from 3.0", the 4.0 documentation). Under the 4.x profile a
 * value that asks for the removed behaviour is refused rather than silently honoured or silently dropped: the
 * operator pinned 4.x and would otherwise get something 4.x does not do. The fix is always one of: remove the
 * key (take 4.x behaviour) or pin typeHandlerVersion 3.x (keep the old behaviour).
 */
import { problem, type SettingsProblem } from './problems.js';
import type { BehaviourProfile } from './profile.js';

export type RemovedSetting = 'requireInitialSync' | 'keyExportable' | 'linkOnRenewal' | 'pinnedVersion';

const WHY: Readonly<Record<RemovedSetting, { asked: string; why: string; remove: string }>> = {
  requireInitialSync: {
    asked: 'requireInitialSync false',
    why: '4.0 removed requireInitialSync: the extension reports success only once every certificate is installed (25 attempts with growing backoff, then error), so a dependent extension never starts without its certificate',
    remove: 'Remove requireInitialSync',
  },
  keyExportable: {
    asked: 'keyExportable true',
    why: '4.0 removed keyExportable: private keys are never exportable (CNG, KeyGuard where available), so a compromised process cannot copy the key off the machine',
    remove: 'Remove keyExportable',
  },
  linkOnRenewal: {
    asked: 'linkOnRenewal false',
    why: '4.0 removed linkOnRenewal: a renewed certificate is always linked to the one it replaces, so S-channel and IIS bindings follow renewals',
    remove: 'Remove linkOnRenewal',
  },
  pinnedVersion: {
    asked: 'a certificate URL with a version',
    why: '4.0 can no longer be configured for a specific certificate version: it always installs the newest versions, so a rotation is never missed',
    remove: 'Remove the version segment from the URL (https://<vault>.vault.azure.net/secrets/<name>)',
  },
};

export function removedIn4(path: string, key: RemovedSetting, _value: unknown, profile: BehaviourProfile): SettingsProblem {
  const w = WHY[key];
  return problem(
    path,
    'removed-in-4.0',
    `${w.asked} is not supported by handler version ${profile.handlerVersion} (4.x profile): ${w.why}.`,
    `${w.remove} to take the 4.x behaviour, or deploy typeHandlerVersion "3.0" to keep the 3.x behaviour.`,
  );
}
