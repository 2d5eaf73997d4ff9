/**
 * What consumers did after a certificate changed (onChange command, moved bindings), kept per certificate while
 * the same version stays active, so a failed reload stays in the substatus of the unchanged polls that follow
 * instead of vanishing an hour later.
 */
import type { CertificateSyncResult, FollowUp } from '../engine/certificateSync.js';
import type { ObservedCertificate } from '../settings/config.js';

export interface FollowUpMemory {
  /** Forgets what earlier changes of the certificates that changed in this cycle did. */
  begin(results: readonly CertificateSyncResult[]): void;
  /** Adds `followUp` to what `result`'s active version has to show. */
  record(result: CertificateSyncResult, followUp: FollowUp): void;
  /** Puts every certificate's remembered follow-ups on this cycle's results; forgets those of replaced versions. */
  attach(results: CertificateSyncResult[]): void;
}

export function createFollowUpMemory(): FollowUpMemory {
  const last = new Map<string, { version: string; followUps: FollowUp[] }>();
  const keyOf = ({ target: t, vaultHost, secretName }: ObservedCertificate): string =>
    [...(t.platform === 'windows' ? [t.storeLocation, t.storeName] : [t.directory, t.linkName]), vaultHost, secretName].join('|');
  return {
    begin(results) {
      for (const r of results) if (r.activated) last.delete(keyOf(r.cert));
    },
    record(result, followUp) {
      const key = keyOf(result.cert);
      const entry = last.get(key) ?? { version: result.activeVersion ?? '', followUps: [] };
      entry.followUps.push(followUp);
      last.set(key, entry);
    },
    attach(results) {
      for (const r of results) {
        const key = keyOf(r.cert);
        const remembered = last.get(key);
        if (!remembered) continue;
        if (remembered.version !== r.activeVersion) {
          last.delete(key);
          continue;
        }
        r.followUps = [...remembered.followUps];
      }
    },
  };
}
