/**
 * What kvvm records on each certificate it installs, in the certificate store itself (no index file):
 *
 *  - CERT_FRIENDLY_NAME_PROP_ID: "kvvm:<vault>/<secret>/<version>", for operators (certlm.msc, Get-ChildItem Cert:\).
 *  - CERT_DESCRIPTION_PROP_ID: "kvvm:" + JSON of the owners: which secret versions this certificate is, their install
 *    order and activation order. A Windows store holds one entry per SHA-1, so two secrets (or two versions) with the
 *    same certificate share the entry; each is an owner, and the entry is deleted with its last owner.
 *    (A user-defined property would hide this from the MMC, but Wine does not store user property IDs, and the
 *    description is a documented, persisted property on every Windows version.)
 *  - CERT_RENEWAL_PROP_ID on a superseded version: SHA-1 of its successor (linkOnRenewal), what IIS and other
 *    consumers follow.
 *
 * All pure: the native side only reads and writes these strings.
 */
import type { CertificateVersionId } from '../../certs/material.js';

const PREFIX = 'kvvm:';

export interface Owner {
  vault: string;
  secret: string;
  version: string;
  /** Install order within the secret: larger is newer. */
  installed: number;
  /** Activation order within the secret: the owner with the largest value is the active version. */
  activated?: number;
}

export interface EntryState {
  owners: Owner[];
  /** The certificate was already in the store before kvvm: never deleted, only un-labelled. */
  adopted?: boolean;
  /** kvvm imported the key with PKCS12_VIRTUAL_ISOLATION_KEY (keyGuard.ts). */
  keyGuard?: boolean;
}

export function friendlyNameOf(id: CertificateVersionId): string {
  return `${PREFIX}${id.vaultName}/${id.secretName}/${id.version}`;
}

export function encodeState(state: EntryState): string {
  return PREFIX + JSON.stringify(state);
}

/** The state from a description, or undefined when the description is not kvvm's (or damaged by hand). */
export function decodeState(description: string | undefined): EntryState | undefined {
  if (description === undefined || !description.startsWith(PREFIX)) return undefined;
  try {
    const value = JSON.parse(description.slice(PREFIX.length)) as unknown;
    if (typeof value !== 'object' || value === null || !Array.isArray((value as EntryState).owners)) return undefined;
    const owners = (value as EntryState).owners.filter(isOwner);
    return {
      owners,
      ...((value as EntryState).adopted === true ? { adopted: true } : {}),
      ...((value as EntryState).keyGuard === true ? { keyGuard: true } : {}),
    };
  } catch {
    return undefined;
  }
}

function isOwner(o: unknown): o is Owner {
  const x = o as Owner;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.vault === 'string' &&
    typeof x.secret === 'string' &&
    typeof x.version === 'string' &&
    Number.isSafeInteger(x.installed) &&
    (x.activated === undefined || Number.isSafeInteger(x.activated))
  );
}

/** A certificate entry as read back from the store. */
export interface StoreEntry {
  thumbprint: string;
  notAfter: Date;
  state: EntryState;
}

export interface OwnedVersion {
  entry: StoreEntry;
  owner: Owner;
  active: boolean;
}

export function sameSecret(o: Owner, vault: string, secret: string): boolean {
  return o.vault === vault && o.secret === secret;
}

/**
 * The versions of one secret found in the store, newest install first; active = the one activated last.
 * Entries listing the same version twice (a version re-installed with a different certificate) keep the newer.
 */
export function versionsOf(entries: readonly StoreEntry[], vault: string, secret: string): OwnedVersion[] {
  const owned = entries.flatMap((entry) => entry.state.owners.filter((o) => sameSecret(o, vault, secret)).map((owner) => ({ entry, owner })));
  owned.sort((a, b) => b.owner.installed - a.owner.installed);
  const seen = new Set<string>();
  const unique = owned.filter(({ owner }) => (seen.has(owner.version) ? false : (seen.add(owner.version), true)));
  const activations = unique.map((u) => u.owner.activated ?? -1);
  const top = Math.max(-1, ...activations);
  return unique.map((u) => ({ ...u, active: top >= 0 && u.owner.activated === top }));
}

/** Next install / activation counter for a secret (max over what the store holds, plus one). */
export function nextCounter(entries: readonly StoreEntry[], vault: string, secret: string, field: 'installed' | 'activated'): number {
  let max = 0;
  for (const e of entries) for (const o of e.state.owners) if (sameSecret(o, vault, secret)) max = Math.max(max, o[field] ?? 0);
  return max + 1;
}
