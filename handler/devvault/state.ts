/**
 * The dev vault's secrets: versions in creation order, optionally persisted to `<stateDir>/secrets.json`
 * (temp file then rename, mode 0600: the file holds private keys) so a restarted vault keeps them.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { splitPemBlocks } from './certFactory.js';

export interface StoredVersion {
  version: string;
  value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  /** Unix seconds, like the REST attributes. */
  created: number;
  updated: number;
  nbf: number | undefined;
  exp: number | undefined;
  /** Certificate-backed secrets are "managed" and carry a kid. */
  managed: boolean;
}

/** Every field may be passed as undefined (callers forward optional values straight through). */
export interface SetSecretOptions {
  contentType?: string | undefined;
  tags?: Record<string, string> | undefined;
  enabled?: boolean | undefined;
  notBefore?: Date | undefined;
  expiresOn?: Date | undefined;
  /**
   * Whether the secret is the secret half of a Key Vault certificate (managed:true + kid). Defaults to true for
   * the two certificate content types. App Service certificates are certificate-like but not managed.
   */
  certificateBacked?: boolean | undefined;
  /** Creation time override (tests that need a specific ordering). */
  createdOn?: Date | undefined;
}

const CERT_CONTENT_TYPES = new Set(['application/x-pkcs12', 'application/x-pem-file']);

/** Validity of the leaf in a certificate secret, to fill nbf/exp the way Key Vault does. Best effort. */
function certificateValidity(value: string, contentType: string | undefined): { nbf: number; exp: number } | undefined {
  try {
    let certPem: string | undefined;
    if (contentType === 'application/x-pem-file') {
      certPem = splitPemBlocks(value).find((b) => b.type === 'CERTIFICATE')?.pem;
    } else if (contentType === 'application/x-pkcs12') {
      const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(Buffer.from(value, 'base64').toString('binary')), true, null as unknown as string);
      const bags = p12.getBags({ bagType: forge.pki.oids['certBag'] })[forge.pki.oids['certBag'] as string] ?? [];
      const cert = bags[0]?.cert;
      if (cert) certPem = forge.pki.certificateToPem(cert);
    }
    if (!certPem) return undefined;
    const x = new X509Certificate(certPem);
    return { nbf: Math.floor(Date.parse(x.validFrom) / 1000), exp: Math.floor(Date.parse(x.validTo) / 1000) };
  } catch {
    // Not a certificate (or an RC2 PFX forge cannot read): Key Vault simply has no nbf/exp then.
    return undefined;
  }
}

export class SecretState {
  /** Key Vault names are case-insensitive but keep the case first written: key = lower case. */
  private readonly secrets = new Map<string, { name: string; versions: StoredVersion[] }>();

  constructor(
    private readonly file: string | undefined,
    private readonly now: () => number,
  ) {
    if (file) this.load(file);
  }

  private load(file: string): void {
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const parsed = JSON.parse(raw) as { secrets?: Record<string, StoredVersion[]> };
    for (const [name, versions] of Object.entries(parsed.secrets ?? {})) this.secrets.set(name.toLowerCase(), { name, versions });
  }

  private persist(): void {
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ secrets: Object.fromEntries([...this.secrets.values()].map((s) => [s.name, s.versions])) }), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  set(name: string, value: string, options: SetSecretOptions = {}): StoredVersion {
    const key = name.toLowerCase();
    const entry = this.secrets.get(key) ?? { name, versions: [] };
    const versions = entry.versions;
    const last = versions[versions.length - 1];
    const nowS = Math.floor((options.createdOn?.getTime() ?? this.now()) / 1000);
    // Key Vault timestamps have one-second resolution; keep them strictly increasing per secret so that
    // "newest first by created" is well defined even when a test writes several versions within a second.
    const created = options.createdOn || !last ? nowS : Math.max(nowS, last.created + 1);
    const validity = certificateValidity(value, options.contentType);
    const stored: StoredVersion = {
      version: randomBytes(16).toString('hex'),
      value,
      contentType: options.contentType,
      tags: options.tags,
      enabled: options.enabled ?? true,
      created,
      updated: created,
      nbf: options.notBefore ? Math.floor(options.notBefore.getTime() / 1000) : validity?.nbf,
      exp: options.expiresOn ? Math.floor(options.expiresOn.getTime() / 1000) : validity?.exp,
      managed: options.certificateBacked ?? (options.contentType !== undefined && CERT_CONTENT_TYPES.has(options.contentType)),
    };
    versions.push(stored);
    this.secrets.set(key, entry);
    this.persist();
    return stored;
  }

  /** All versions in creation order, or undefined when the secret does not exist. */
  versions(name: string): readonly StoredVersion[] | undefined {
    return this.secrets.get(name.toLowerCase())?.versions;
  }

  /** The name as first written (Key Vault echoes that case in ids). */
  displayName(name: string): string {
    return this.secrets.get(name.toLowerCase())?.name ?? name;
  }

  get(name: string, version?: string): StoredVersion | undefined {
    const versions = this.secrets.get(name.toLowerCase())?.versions;
    if (!versions) return undefined;
    if (version === undefined) return versions[versions.length - 1];
    return versions.find((v) => v.version === version.toLowerCase());
  }

  update(name: string, version: string | undefined, patch: { enabled?: boolean; contentType?: string; tags?: Record<string, string> }): StoredVersion | undefined {
    const v = this.get(name, version);
    if (!v) return undefined;
    if (patch.enabled !== undefined) v.enabled = patch.enabled;
    if (patch.contentType !== undefined) v.contentType = patch.contentType;
    if (patch.tags !== undefined) v.tags = patch.tags;
    v.updated = Math.max(v.created, Math.floor(this.now() / 1000));
    this.persist();
    return v;
  }

  /** Deletes every version; returns the latest for the DeletedSecretBundle reply. */
  delete(name: string): StoredVersion | undefined {
    const versions = this.secrets.get(name.toLowerCase())?.versions;
    if (!versions) return undefined;
    this.secrets.delete(name.toLowerCase());
    this.persist();
    return versions[versions.length - 1];
  }

  /** Secret names in display form (as first written), sorted. */
  names(): string[] {
    return [...this.secrets.values()].map((s) => s.name).sort();
  }
}
