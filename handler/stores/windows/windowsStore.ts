/**
 * The Windows certificate store behind the CertificateStore contract (handler/stores/store.ts).
 *
 *   leaf + key   -> <certificateStoreLocation>\<certificateStoreName>  (PFXImportCertStore, key ACL from acl.ts)
 *   intermediates-> <certificateStoreLocation>\CA                      (public certificates only; never removed)
 *   roots        -> never installed (trust is the operator's decision)
 *
 * The store is the only state: each kvvm certificate carries its friendly name "kvvm:<vault>/<secret>/<version>"
 * and, in its description, which versions it is with their install and activation order (state.ts). `activate`
 * stamps the activation order and, with linkOnRenewal, sets CERT_RENEWAL_PROP_ID on the previous version to the
 * new SHA-1. Every store is committed (CertControlStore) before it is closed and every context is freed.
 */
import { X509Certificate } from 'node:crypto';
import type { CertificateMaterial, CertificateVersionId } from '../../certs/material.js';
import { notAfterOf } from '../../certs/parse.js';
import { KvvmError } from '../../errors.js';
import { windowsTarget, type ObservedCertificate } from '../../settings/config.js';
import type { CertificateStore, InstalledCertificate } from '../store.js';
import {
  certificateOf,
  deleteCertificate,
  ENCODING,
  findBySha1,
  forEachCertificate,
  freeContext,
  getStringProperty,
  keyOf,
  setProperty,
  thumbprintOfContext,
  utf16z,
  withSystemStore,
  type StoreLocation,
} from '../../platform/win32/certStore.js';
import { win32Error } from '../../platform/win32/errors.js';
import { cngProbeFlags, pfxImportFlags } from './flags.js';
import { applyKeyAcl, deletePersistedKey, keySddlFor } from './keys.js';
import { keyGuardProbeFlags, locationLabel, probeImport, useKeyGuard } from './keyGuard.js';
import { lifecycleLogLine, raiseRenewalEvent, type LifecycleHost, type SwitchCertificateInput } from './lifecycleEvent.js';
import {
  CERT_DESCRIPTION_PROP_ID,
  CERT_FRIENDLY_NAME_PROP_ID,
  CERT_RENEWAL_PROP_ID,
  CERT_STORE_ADD_REPLACE_EXISTING_INHERIT_PROPERTIES,
  CERT_STORE_ADD_USE_EXISTING,
  loadNative,
  type Handle,
  type Native,
} from '../../platform/win32/native.js';
import { buildImportPfx, type ImportPfx } from './pfx.js';
import { decodeState, encodeState, friendlyNameOf, nextCounter, sameSecret, versionsOf, type EntryState, type OwnedVersion, type StoreEntry } from './state.js';

export interface WindowsStoreOptions {
  /** Set CERT_RENEWAL_PROP_ID on the previous version when a new one is activated (settings linkOnRenewal). */
  linkOnRenewal?: boolean;
  /** The native bindings; tests and Linux never load them unless the store is used. */
  native?: () => Native;
  /** Where the lifecycle-event outcome and each import's flags are logged (the service logger); without one nothing is. */
  log?: { info(message: string): void; warn(message: string): void };
  /** Runs powershell.exe for event 1001 (lifecycleEvent.ts); tests replace it. */
  lifecycle?: LifecycleHost;
  /** %SystemRoot%, where powershell.exe is looked for. */
  systemRoot?: string;
  /** profile.ts windowsKeyStorage: 'cng' (4.x, default) or 'pfx-default' (3.x: the PFX's CSP attribute decides). */
  keyStorage?: 'cng' | 'pfx-default';
}

interface Target {
  location: StoreLocation;
  storeName: string;
  where: string;
  keyExportable: boolean;
  /** Accounts given read access to the private key. */
  accounts: string[];
}

export function createWindowsStore(options: WindowsStoreOptions = {}): CertificateStore {
  const native = options.native ?? loadNative;
  const linkOnRenewal = options.linkOnRenewal ?? false;
  const keyStorage = options.keyStorage ?? 'cng';
  const systemRoot = options.systemRoot ?? process.env['SystemRoot'];
  /** Capability probe result, once per store (process): can PFXImportCertStore put keys into CNG here? */
  let cng: boolean | undefined;

  /** Capability probe result for KeyGuard (PKCS12_VIRTUAL_ISOLATION_KEY), once per store, asked only when it matters. */
  let keyGuardSupported: boolean | undefined;

  /** One line per import: which PFXImportCertStore flags placed the key, so an operator (and the Wine test) can tell CAPI1 from CNG. */
  function logImport(thumbprint: string, flags: number, how: string): void {
    options.log?.info(`imported ${thumbprint}: PFXImportCertStore flags 0x${flags.toString(16)} (${how})`);
  }

  function importLeaf(
    n: Native,
    target: Handle,
    cert: ObservedCertificate,
    t: Target,
    pfx: ImportPfx,
    thumbprint: string,
    cspName: string | undefined,
  ): { ctx: Handle; keyGuard: boolean } {
    const blob = { cbData: pfx.der.length, pbData: pfx.der };
    if (keyStorage === 'pfx-default') {
      const flags = pfxImportFlags({ location: t.location, keyExportable: t.keyExportable, cng: false, keyStorage });
      const ctx = addImportedLeaf(n, target, t, n.PFXImportCertStore(blob, pfx.password, flags) as Handle | null, flags, thumbprint);
      logImport(thumbprint, flags, cspName === undefined ? 'no CNG flag; the PFX names no CSP' : `no CNG flag; the PFX's CSP name "${cspName}" picks the provider`);
      return { ctx, keyGuard: false };
    }
    const probed = cng ?? probeImport(n, pfx, cngProbeFlags());
    if (!t.keyExportable && probed && keyGuardSupported === undefined) keyGuardSupported = probeImport(n, pfx, keyGuardProbeFlags());
    let keyGuard = useKeyGuard({ keyExportable: t.keyExportable, cng: probed, keyGuardSupported: keyGuardSupported ?? false });
    let flags = pfxImportFlags({ location: t.location, keyExportable: t.keyExportable, cng: probed, keyGuard });
    let memory = n.PFXImportCertStore(blob, pfx.password, flags) as Handle | null;
    if (!memory && keyGuard) {
      // The probe said yes but the persisted VBS import did not: the plain CNG import rather than no certificate.
      keyGuard = false;
      keyGuardSupported = false;
      flags = pfxImportFlags({ location: t.location, keyExportable: t.keyExportable, cng: probed });
      memory = n.PFXImportCertStore(blob, pfx.password, flags) as Handle | null;
    }
    const ctx = addImportedLeaf(n, target, t, memory, flags, thumbprint);
    logImport(thumbprint, flags, probed ? `CNG${keyGuard ? ' with KeyGuard' : ''}` : 'CNG probe failed on this platform, CAPI1 default provider; no CSP name in the PFX');
    cng = probed; // only trusted once an import with these flags worked
    return { ctx, keyGuard };
  }

  /** The leaf out of PFXImportCertStore's memory store into the target store; the memory store is always closed. */
  function addImportedLeaf(n: Native, target: Handle, t: Target, memory: Handle | null, flags: number, thumbprint: string): Handle {
    if (!memory) throw win32Error('PFXImportCertStore', n.GetLastError(), `import the certificate ${thumbprint} (flags 0x${flags.toString(16)})`);
    let leaf: Handle | undefined;
    try {
      leaf = findBySha1(n, memory, thumbprint);
      if (leaf === undefined) throw new KvvmError('windows-import-no-leaf', `The imported PKCS#12 does not contain the certificate ${thumbprint}.`);
      const out: [Handle | null] = [null];
      if (!n.CertAddCertificateContextToStore(target, leaf, CERT_STORE_ADD_REPLACE_EXISTING_INHERIT_PROPERTIES, out) || !out[0]) {
        const err = n.GetLastError();
        deletePersistedKey(n, leaf, () => false); // the import persisted a key nobody will point at
        throw win32Error('CertAddCertificateContextToStore', err, `add the certificate ${thumbprint} to ${t.where}`);
      }
      return out[0];
    } finally {
      freeContext(n, leaf);
      n.CertCloseStore(memory, 0);
    }
  }

  function addIntermediates(n: Native, t: Target, material: CertificateMaterial): void {
    const intermediates = material.chain.filter((c) => !isSelfSigned(c));
    if (intermediates.length === 0) return;
    withSystemStore(n, t.location, 'CA', 'write', (ca) => {
      for (const c of intermediates) {
        const der = c.raw;
        if (!n.CertAddEncodedCertificateToStore(ca, ENCODING, der, der.length, CERT_STORE_ADD_USE_EXISTING, null)) {
          throw win32Error('CertAddEncodedCertificateToStore', n.GetLastError(), `add the intermediate "${c.subject}" to ${t.location}\\CA`);
        }
      }
    });
  }

  /** Rewrites (or deletes, when no owner is left) the entry with this thumbprint. */
  function updateEntry(n: Native, store: Handle, thumbprint: string, t: Target, mutate: (s: EntryState) => EntryState): void {
    const ctx = findBySha1(n, store, thumbprint);
    if (ctx === undefined) return;
    let owned: Handle | undefined = ctx;
    try {
      const before = decodeState(getStringProperty(n, ctx, CERT_DESCRIPTION_PROP_ID)) ?? { owners: [] };
      const after = mutate(before);
      if (after.owners.length > 0) {
        writeLabels(n, ctx, after);
      } else if (after.adopted) {
        setProperty(n, ctx, CERT_DESCRIPTION_PROP_ID, undefined);
        setProperty(n, ctx, CERT_FRIENDLY_NAME_PROP_ID, undefined);
      } else {
        const key = keyOf(n, ctx);
        if (key) deletePersistedKey(n, ctx, (container) => containerUsedElsewhere(n, store, container, thumbprint));
        owned = undefined;
        deleteCertificate(n, ctx, `the certificate ${thumbprint} from ${t.where}`);
      }
    } finally {
      freeContext(n, owned);
    }
  }

  function withTarget<T>(cert: ObservedCertificate, mode: 'read' | 'write', fn: (n: Native, store: Handle | undefined, t: Target) => T): T {
    const t = targetOf(cert);
    const n = native();
    return withSystemStore(n, t.location, t.storeName, mode, (store) => fn(n, store, t));
  }

  async function list(cert: ObservedCertificate): Promise<InstalledCertificate[]> {
    return withTarget(cert, 'read', (n, store, t) => (store === undefined ? [] : versionsOf(readEntries(n, store), cert.vaultName, cert.secretName).map((v) => installedOf(v, t))));
  }

  async function install(cert: ObservedCertificate, id: CertificateVersionId, material: CertificateMaterial): Promise<InstalledCertificate> {
    const { accounts } = targetOf(cert);
    let pfx: ImportPfx;
    try {
      // 3.x: the source PFX's CSP Name goes along so PFXImportCertStore chooses CAPI1/CNG as it would for the original.
      pfx = buildImportPfx(material.leaf, material.privateKey, undefined, keyStorage === 'pfx-default' ? { cspName: material.keyProvider } : {});
    } catch (cause) {
      throw new KvvmError('store-bad-material', `The certificate ${describeId(id)} cannot be packaged for the Windows certificate store.`, {
        fix: 'Re-import the certificate into Key Vault.',
        cause,
      });
    }
    const sddl = keySddlFor(native(), accounts);
    return withTarget(cert, 'write', (n, maybeStore, t) => {
      const store = maybeStore as Handle;
      const entries = readEntries(n, store);
      const existing = versionsOf(entries, id.vaultName, id.secretName).find((v) => v.owner.version === id.version);
      if (existing && existing.entry.thumbprint === material.thumbprint) return installedOf(existing, t);
      addIntermediates(n, t, material);

      const found = findBySha1(n, store, material.thumbprint);
      const hadKey = found !== undefined && keyOf(n, found) !== undefined;
      const before =
        found === undefined
          ? undefined
          : {
              description: getStringProperty(n, found, CERT_DESCRIPTION_PROP_ID),
              friendlyName: getStringProperty(n, found, CERT_FRIENDLY_NAME_PROP_ID),
            };
      let ctx: Handle | undefined = found;
      const previous = decodeState(before?.description);
      let keyGuard = previous?.keyGuard === true;
      try {
        if (!hadKey) {
          freeContext(n, found);
          ctx = undefined;
          const imported = importLeaf(n, store, cert, t, pfx, material.thumbprint, material.keyProvider);
          ctx = imported.ctx;
          keyGuard = imported.keyGuard;
        }
        const owner = { vault: id.vaultName, secret: id.secretName, version: id.version, installed: nextCounter(entries, id.vaultName, id.secretName, 'installed') };
        const state: EntryState = {
          owners: [...(previous?.owners ?? []).filter((o) => !(sameSecret(o, id.vaultName, id.secretName) && o.version === id.version)), owner],
          ...((previous ? previous.adopted : found !== undefined) ? { adopted: true } : {}),
          ...(keyGuard ? { keyGuard: true } : {}),
        };
        try {
          writeLabels(n, ctx as Handle, state);
          if (sddl !== undefined) applyKeyAcl(n, ctx as Handle, sddl);
        } catch (err) {
          rollback(n, store, ctx as Handle, found !== undefined, before, t);
          ctx = undefined; // rollback freed it
          throw err;
        }
      } finally {
        freeContext(n, ctx);
      }
      // The same version held by another certificate before (re-issued by hand): that one is no longer it.
      if (existing)
        updateEntry(n, store, existing.entry.thumbprint, t, (s) => ({
          ...s,
          owners: s.owners.filter((o) => o !== existing.owner && !(sameSecret(o, id.vaultName, id.secretName) && o.version === id.version)),
        }));
      const entry = versionsOf(readEntries(n, store), id.vaultName, id.secretName).find((v) => v.owner.version === id.version);
      if (!entry) throw new KvvmError('windows-install-lost', `${describeId(id)} is not in ${t.where} after installing it.`);
      return installedOf(entry, t);
    });
  }

  async function activate(cert: ObservedCertificate, id: CertificateVersionId, previous: InstalledCertificate | undefined): Promise<void> {
    const linked = withTarget(cert, 'write', (n, maybeStore, t): SwitchCertificateInput | undefined => {
      const store = maybeStore as Handle;
      const entries = readEntries(n, store);
      const target = versionsOf(entries, id.vaultName, id.secretName).find((v) => v.owner.version === id.version);
      if (!target) {
        throw new KvvmError('store-version-missing', `Cannot activate ${describeId(id)}: it is not installed in ${t.where}.`, {
          fix: 'This is a kvvm bug (activate before install); restart the service to resynchronise.',
        });
      }
      if (!target.active) {
        const activated = nextCounter(entries, id.vaultName, id.secretName, 'activated');
        updateEntry(n, store, target.entry.thumbprint, t, (s) => ({
          ...s,
          owners: s.owners.map((o) => (sameSecret(o, id.vaultName, id.secretName) && o.version === id.version ? { ...o, activated } : o)),
        }));
      }
      if (linkOnRenewal && previous && previous.thumbprint !== target.entry.thumbprint) {
        const old = findBySha1(n, store, previous.thumbprint);
        if (old !== undefined) {
          try {
            setProperty(n, old, CERT_RENEWAL_PROP_ID, Buffer.from(target.entry.thumbprint, 'hex'));
          } finally {
            freeContext(n, old);
          }
          return {
            location: t.location,
            storeName: t.storeName,
            oldThumbprint: previous.thumbprint,
            newThumbprint: target.entry.thumbprint,
            ...(systemRoot ? { systemRoot } : {}),
          };
        }
      }
      return undefined;
    });
    // After the store is committed and closed: IIS reads the renewal link when the event arrives.
    if (linked) {
      const line = lifecycleLogLine(linked, await raiseRenewalEvent(linked, options.lifecycle));
      options.log?.[line.level](line.message);
    }
  }

  async function remove(cert: ObservedCertificate, installed: InstalledCertificate): Promise<void> {
    if ((await list(cert)).length === 0) return; // also: a store that does not exist is not created by a remove
    withTarget(cert, 'write', (n, maybeStore, t) => {
      const store = maybeStore as Handle;
      const version = versionsOf(readEntries(n, store), cert.vaultName, cert.secretName).find((v) => v.owner.version === installed.version);
      if (!version) return; // "not found" is not an error
      if (version.active) {
        throw new KvvmError(
          'store-remove-active',
          `Refusing to remove ${installed.vaultName}/${installed.secretName}/${installed.version} from ${t.where}: it is the active version.`,
          {
            fix: 'This is a kvvm bug (the planner removed the active version); nothing was changed.',
          },
        );
      }
      updateEntry(n, store, version.entry.thumbprint, t, (s) => ({
        ...s,
        owners: s.owners.filter((o) => !(sameSecret(o, cert.vaultName, cert.secretName) && o.version === installed.version)),
      }));
    });
  }

  async function removeAll(cert: ObservedCertificate): Promise<void> {
    const listed = await list(cert);
    if (listed.length === 0) return;
    withTarget(cert, 'write', (n, maybeStore, t) => {
      const store = maybeStore as Handle;
      const thumbprints = new Set(versionsOf(readEntries(n, store), cert.vaultName, cert.secretName).map((v) => v.entry.thumbprint));
      for (const thumbprint of thumbprints) {
        updateEntry(n, store, thumbprint, t, (s) => ({ ...s, owners: s.owners.filter((o) => !sameSecret(o, cert.vaultName, cert.secretName)) }));
      }
    });
  }

  return { kind: 'windows', list, install, activate, remove, removeAll };
}

/** Friendly name of the most recently installed owner; the full state in the description. */
function writeLabels(n: Native, ctx: Handle, state: EntryState): void {
  const newest = [...state.owners].sort((a, b) => b.installed - a.installed)[0];
  if (newest) setProperty(n, ctx, CERT_FRIENDLY_NAME_PROP_ID, utf16z(friendlyNameOf({ vaultName: newest.vault, secretName: newest.secret, version: newest.version })));
  setProperty(n, ctx, CERT_DESCRIPTION_PROP_ID, utf16z(encodeState(state)));
}

/** Undo a failed install: delete what was added, or put the labels of an existing entry back. Frees ctx. */
function rollback(
  n: Native,
  store: Handle,
  ctx: Handle,
  existed: boolean,
  before: { description: string | undefined; friendlyName: string | undefined } | undefined,
  t: Target,
): void {
  try {
    if (!existed) {
      const thumbprint = thumbprintOfContext(n, ctx);
      deletePersistedKey(n, ctx, (container) => containerUsedElsewhere(n, store, container, thumbprint));
      deleteCertificate(n, ctx, `the half-installed certificate from ${t.where}`);
      return;
    }
    setProperty(n, ctx, CERT_DESCRIPTION_PROP_ID, before?.description === undefined ? undefined : utf16z(before.description));
    setProperty(n, ctx, CERT_FRIENDLY_NAME_PROP_ID, before?.friendlyName === undefined ? undefined : utf16z(before.friendlyName));
    freeContext(n, ctx);
  } catch {
    // the original failure is what the operator needs to see; the next poll retries the install
  }
}

function containerUsedElsewhere(n: Native, store: Handle, container: string, thumbprint: string): boolean {
  let used = false;
  forEachCertificate(n, store, (ctx) => {
    if (!used && keyOf(n, ctx)?.container === container && thumbprintOfContext(n, ctx) !== thumbprint) used = true;
  });
  return used;
}

/** Every kvvm-labelled certificate in the store. */
function readEntries(n: Native, store: Handle): StoreEntry[] {
  const entries: StoreEntry[] = [];
  forEachCertificate(n, store, (ctx) => {
    const state = decodeState(getStringProperty(n, ctx, CERT_DESCRIPTION_PROP_ID));
    if (!state || state.owners.length === 0) return;
    entries.push({ thumbprint: thumbprintOfContext(n, ctx), notAfter: notAfterOf(certificateOf(n, ctx)), state });
  });
  return entries;
}

function installedOf(v: OwnedVersion, t: Target): InstalledCertificate {
  return {
    vaultName: v.owner.vault,
    secretName: v.owner.secret,
    version: v.owner.version,
    thumbprint: v.entry.thumbprint,
    notAfter: v.entry.notAfter,
    active: v.active,
    location: locationLabel(t.where, v.entry.state.keyGuard === true),
  };
}

/** The store slot of a certificate; its location was checked by the settings (settings/certificates.ts). */
function targetOf(cert: ObservedCertificate): Target {
  const { storeLocation: location, storeName, keyExportable, accounts } = windowsTarget(cert);
  if (!/^[A-Za-z0-9 _.-]{1,64}$/.test(storeName) || storeName.toLowerCase() === 'root') {
    throw new KvvmError('store-invalid-name', `Invalid certificateStoreName "${storeName}".`, {
      fix: 'Use a certificate store name such as "MY", "WebHosting" or "TrustedPeople" (kvvm never installs into Root).',
    });
  }
  return { location, storeName, where: `${location}\\${storeName}`, keyExportable, accounts };
}

function isSelfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

function describeId(id: CertificateVersionId): string {
  return `${id.vaultName}/${id.secretName}/${id.version}`;
}
