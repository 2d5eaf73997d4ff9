/**
 * Syncs ONE observed certificate: ask the vault which versions exist, plan against the store, fetch and check
 * only what is missing, apply. Knows nothing about the guest-agent protocol. One certificate's failure is
 * reported in its result and never touches other certificates; a fetch failure never removes anything.
 */
import { KvvmError, describeError } from '../errors.js';
import type { Reason } from '../reasons.js';
import type { CertificateMaterial, CertificateVersionId } from '../certs/material.js';
import type { ObservedCertificate } from '../settings/config.js';
import type { CertificateStore, InstalledCertificate } from '../stores/store.js';
import type { FetchedSecret, SecretVersionInfo, VaultReader } from '../vault/types.js';
import { VERSIONS_KEPT, planCertificate, selectWantedVersions, type PlannedAction } from './planner.js';
import type { PollCycleMemory, PollMemory } from './pollMemory.js';

type CertificateState = 'installed' | 'unchanged' | 'error' | 'skipped';

export interface CertificateSyncResult {
  cert: ObservedCertificate;
  state: CertificateState;
  /** True when this cycle installed or activated something. */
  changed: boolean;
  activeVersion?: string;
  thumbprint?: string;
  notAfter?: Date;
  /** Where the active version lives: the PEM file, or the Windows store (marked "(KeyGuard)" when it is there). */
  location?: string;
  /** Operator-facing text for error/skipped, or a warning for an otherwise successful sync. */
  message?: string;
  /** Why it failed or was skipped (the catalogue's reason; also on the substatus). */
  reason?: Reason;
  /** Set when this cycle made another version the active one: what was active before (nothing on a first install). */
  activated?: { previousVersion?: string; previousThumbprint?: string };
  /** What consumers did after the change (onChange command, moved bindings), one sentence each, for the substatus. */
  followUps?: FollowUp[];
}

export interface FollowUp {
  ok: boolean;
  text: string;
}

export interface SyncLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export interface CertificateSyncDeps {
  vault: VaultReader;
  store: CertificateStore;
  /** The service parses in worker threads (certs/parserPool.ts), so this may be asynchronous. */
  parse: (value: string, contentType: string | undefined) => CertificateMaterial | Promise<CertificateMaterial>;
  /** Chain check for server-auth leaves; undefined result = accepted. */
  checkChain: (material: CertificateMaterial, now: Date, cert: ObservedCertificate) => KvvmError | undefined;
  /**
   * What a failed chain check means (profile.ts chainFailure): 'refuse' (4.x, default) does not install the
   * version; 'warn' (3.x, which has no chain check) installs it and says why in the certificate's substatus.
   */
  chainFailure?: 'refuse' | 'warn';
  now: () => Date;
  log: SyncLogger;
  /**
   * What earlier cycles learnt of each certificate's versions (./pollMemory.ts), so an unchanged certificate costs
   * at most one request per poll; without it every poll lists every version.
   */
  memory?: PollMemory;
}

const CERT_CONTENT_TYPES = new Set(['application/x-pkcs12', 'application/x-pem-file']);

export async function syncCertificate(cert: ObservedCertificate, deps: CertificateSyncDeps, memory?: PollCycleMemory): Promise<CertificateSyncResult> {
  const label = `${cert.vaultName}/${cert.secretName}`;
  const activation: Activation = {};
  try {
    const now = deps.now();
    const versions = await listWantedCandidates(cert, deps, memory);
    const wanted = selectWantedVersions(versions.list, { keep: VERSIONS_KEPT, now, pinnedVersion: cert.pinnedVersion });
    if (wanted.length === 0) {
      throw new KvvmError(
        'no-enabled-version',
        cert.pinnedVersion
          ? `Version ${cert.pinnedVersion} of secret '${cert.secretName}' in vault '${cert.vaultName}' does not exist or is disabled.`
          : `Secret '${cert.secretName}' in vault '${cert.vaultName}' has no enabled, currently valid version.`,
        { fix: 'Enable a version of the certificate in Key Vault, or correct the URL in observedCertificates.' },
      );
    }
    const installed = await deps.store.list(cert);
    const actions = planCertificate(
      wanted.map((w) => w.version),
      installed,
    );
    const newest = wanted[0]!.version;
    let changed = false;
    let warning: string | undefined;
    const notes: string[] = [];
    for (const action of actions) {
      try {
        changed = (await applyAction(cert, action, installed, versions.prefetched, deps, notes, activation)) || changed;
      } catch (err) {
        // The newest version and its activation are the point of the sync; an older version is best effort.
        if (action.version === newest || action.kind === 'activate') throw err;
        warning = `Previous version ${action.version} was not installed: ${describeError(err)}`;
        deps.log.warn(`${label}: ${warning}`);
      }
    }
    // Nothing applied (the steady-state poll): the listing taken above is still the store's state.
    const after = actions.length === 0 ? installed : await deps.store.list(cert);
    const active = after.find((i) => i.active);
    const result: CertificateSyncResult = { cert, state: changed ? 'installed' : 'unchanged', changed };
    if (active) {
      Object.assign(result, activeFields(active));
    }
    const message = [...notes, ...(warning === undefined ? [] : [warning])].join(' ');
    if (message !== '') result.message = message;
    if (activation.done) result.activated = activation.done;
    // The chain check (which refuses expired server-auth certificates) does not cover other certificates, and a
    // secret without an expiry attribute passes the version filter: what is in place may still be expired.
    if (active && active.notAfter.getTime() <= now.getTime()) {
      const expired =
        `Warning: the installed certificate ${active.thumbprint} expired on ${active.notAfter.toISOString()}; ` +
        'anything using it will fail. Fix: renew the certificate in Key Vault; kvvm installs the new version at the next poll.';
      deps.log.warn(`${label}: ${expired}`);
      result.message = result.message === undefined ? expired : `${result.message} ${expired}`;
    }
    return result;
  } catch (err) {
    const message = describeError(err);
    const reason = err instanceof KvvmError ? err.reason : 'unexpected';
    const skipped = reason === 'not-a-certificate';
    (skipped ? deps.log.warn : deps.log.error).call(deps.log, `${label}: ${message}`, { reason });
    const result: CertificateSyncResult = { cert, state: skipped ? 'skipped' : 'error', changed: false, message, reason };
    // A step after the activation failed: the new version is in use all the same, and its consumers must hear of it.
    if (activation.done) result.activated = activation.done;
    // Report what is still installed so the status shows the machine is not left without a certificate.
    try {
      const active = (await deps.store.list(cert)).find((i) => i.active);
      if (active) {
        Object.assign(result, activeFields(active));
      }
    } catch {
      // The store error is already the more interesting one; the result says error either way.
    }
    return result;
  }
}

function activeFields(active: InstalledCertificate): Pick<CertificateSyncResult, 'activeVersion' | 'thumbprint' | 'notAfter' | 'location'> {
  return { activeVersion: active.version, thumbprint: active.thumbprint, notAfter: active.notAfter, location: active.location };
}

interface Activation {
  done?: NonNullable<CertificateSyncResult['activated']>;
}

interface Candidates {
  list: SecretVersionInfo[];
  /** Secrets already fetched while listing (the fallback path), so they are not downloaded twice. */
  prefetched: Map<string, FetchedSecret>;
}

/**
 * Versions come from the versions list (requests without values), or, when the vault shows that nothing changed
 * since the last cycle, from memory (./pollMemory.ts). An identity with only `get` permission cannot list, so a
 * 403 on list falls back to fetching the latest version.
 */
async function listWantedCandidates(cert: ObservedCertificate, deps: CertificateSyncDeps, memory: PollCycleMemory | undefined): Promise<Candidates> {
  const prefetched = new Map<string, FetchedSecret>();
  if (cert.pinnedVersion !== undefined) {
    const secret = await deps.vault.getSecret(cert.vaultUrl, cert.secretName, cert.pinnedVersion);
    prefetched.set(secret.version, secret);
    return { list: [secret], prefetched };
  }
  const known = await memory?.check(cert);
  if (known?.kind === 'unchanged') {
    if (known.prefetched) prefetched.set(known.prefetched.version, known.prefetched);
    return { list: known.list, prefetched };
  }
  if (known?.kind === 'latest-only') return latestOnly(cert, known.latest, prefetched, deps);
  if (known?.prefetched) prefetched.set(known.prefetched.version, known.prefetched);
  let list: SecretVersionInfo[];
  try {
    list = await deps.vault.listVersions(cert.vaultUrl, cert.secretName);
  } catch (err) {
    if (!(err instanceof KvvmError) || err.reason !== 'forbidden') throw err;
    const latest = await deps.vault.getSecret(cert.vaultUrl, cert.secretName);
    memory?.remember(cert, [latest], true);
    return latestOnly(cert, latest, prefetched, deps);
  }
  memory?.remember(cert, list, false);
  return { list, prefetched };
}

function latestOnly(cert: ObservedCertificate, latest: FetchedSecret, prefetched: Map<string, FetchedSecret>, deps: CertificateSyncDeps): Candidates {
  deps.log.warn(
    `${cert.vaultName}/${cert.secretName}: listing versions is not permitted; installing only the latest version. ` +
      `Grant 'list' (or the 'Key Vault Secrets User' role) to keep the previous version installed too.`,
  );
  prefetched.set(latest.version, latest);
  return { list: [latest], prefetched };
}

async function applyAction(
  cert: ObservedCertificate,
  action: PlannedAction,
  installedBefore: readonly InstalledCertificate[],
  prefetched: Map<string, FetchedSecret>,
  deps: CertificateSyncDeps,
  notes: string[],
  activation: Activation,
): Promise<boolean> {
  const label = `${cert.vaultName}/${cert.secretName}`;
  const id: CertificateVersionId = { vaultName: cert.vaultName, secretName: cert.secretName, version: action.version };
  switch (action.kind) {
    case 'install': {
      const secret = prefetched.get(action.version) ?? (await deps.vault.getSecret(cert.vaultUrl, cert.secretName, action.version));
      const material = await materialFromSecret(secret, deps);
      const checked = deps.checkChain(material, deps.now(), cert);
      if (checked && deps.chainFailure !== 'warn') throw checked;
      if (checked) {
        const note = `Version ${action.version} installed although its chain does not validate (the 3.x profile has no chain check; 4.x would refuse it): ${checked.describe()}`;
        notes.push(note);
        deps.log.warn(`${label}: ${note}`, { reason: checked.reason });
      }
      const entry = await deps.store.install(cert, id, material);
      deps.log.info(`${label}: installed version ${action.version}`, {
        thumbprint: entry.thumbprint,
        notAfter: entry.notAfter.toISOString(),
        location: entry.location,
      });
      return true;
    }
    case 'activate': {
      const previous = (await deps.store.list(cert)).find((i) => i.active) ?? installedBefore.find((i) => i.active);
      await deps.store.activate(cert, id, previous);
      activation.done = previous ? { previousVersion: previous.version, previousThumbprint: previous.thumbprint } : {};
      deps.log.info(`${label}: version ${action.version} is now active`, { previous: previous?.version ?? null });
      return true;
    }
    case 'remove': {
      const entry = (await deps.store.list(cert)).find((i) => i.version === action.version);
      if (entry && !entry.active) {
        await deps.store.remove(cert, entry);
        deps.log.info(`${label}: removed old version ${action.version}`, { thumbprint: entry.thumbprint });
      }
      return false;
    }
  }
}

async function materialFromSecret(secret: FetchedSecret, deps: CertificateSyncDeps): Promise<CertificateMaterial> {
  const type = secret.contentType?.toLowerCase();
  if (type !== undefined && !CERT_CONTENT_TYPES.has(type)) {
    throw new KvvmError('not-a-certificate', `Secret '${secret.name}' has content type '${secret.contentType}', so it is not a certificate; it is skipped.`, {
      fix: 'Observe only certificate-backed secrets (content type application/x-pkcs12 or application/x-pem-file).',
    });
  }
  return await deps.parse(secret.value, secret.contentType);
}
