/**
 * Benchmark fixtures: a small pool of real certificates (RSA 2048, issued by a bench CA, serverAuth so the
 * service's chain check runs), packed as Key Vault packs them (password-less PKCS#12, 3DES, SHA-1 MAC), and a
 * dev-vault state file holding N secrets built from that pool.
 *
 * The state file is written directly instead of through setSecret(): the dev vault persists its whole state on
 * every set, which is quadratic for thousands of secrets. Values repeat across secrets (a pool of a few
 * certificates), which changes nothing for the engine: every secret is fetched, parsed and installed on its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64, type IssuedCertificate } from '../handler/devvault/certFactory.js';
import type { StoredVersion } from '../handler/devvault/state.js';
import type { ObservedCertificate } from '../handler/settings/config.js';
import { parseSettings } from '../handler/settings/index.js';

export interface CertPool {
  ca: IssuedCertificate;
  /** Base64 PKCS#12 values with their leaf validity (unix seconds). */
  values: { pfx: string; pem: string; nbf: number; exp: number }[];
}

export function makeCertPool(size: number): CertPool {
  const ca = createCa('kvvm bench root');
  const values = Array.from({ length: size }, (_, i) => {
    const leaf = issueCertificate({ issuer: ca, subjectCn: `bench-${i}.test`, dnsNames: [`bench-${i}.test`], serverAuth: true });
    return {
      pfx: toPkcs12Base64(leaf.keyPem, [leaf.certPem, ca.certPem]),
      pem: toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]),
      nbf: Math.floor(Date.parse(leaf.cert.validFrom) / 1000),
      exp: Math.floor(Date.parse(leaf.cert.validTo) / 1000),
    };
  });
  return { ca, values };
}

export function secretName(i: number): string {
  return `cert-${String(i).padStart(5, '0')}`;
}

export type VaultState = Record<string, StoredVersion[]>;

export type SecretFormat = 'pkcs12' | 'pem';

function storedVersion(pool: CertPool, index: number, created: number, format: SecretFormat = 'pkcs12'): StoredVersion {
  const value = pool.values[index % pool.values.length]!;
  return {
    version: randomBytes(16).toString('hex'),
    value: format === 'pkcs12' ? value.pfx : value.pem,
    contentType: format === 'pkcs12' ? 'application/x-pkcs12' : 'application/x-pem-file',
    tags: undefined,
    enabled: true,
    created,
    updated: created,
    nbf: value.nbf,
    exp: value.exp,
    managed: true,
  };
}

/** `count` secrets with one version each; secret i uses pool value i mod pool size. */
export function buildVaultState(pool: CertPool, count: number, format: SecretFormat = 'pkcs12', createdAt = Math.floor(Date.now() / 1000) - 60): VaultState {
  const state: VaultState = {};
  for (let i = 0; i < count; i++) state[secretName(i)] = [storedVersion(pool, i, createdAt, format)];
  return state;
}

/** Adds a newer version to every secret (a rotation of all of them), using another pool value. */
export function rotateAll(state: VaultState, pool: CertPool): void {
  let i = 0;
  for (const versions of Object.values(state)) {
    const last = versions[versions.length - 1]!;
    versions.push(storedVersion(pool, i + 1, last.created + 1));
    i++;
  }
}

/** A secret named `name` with `count` versions, one second apart (a certificate rotated `count - 1` times). */
export function addHistory(state: VaultState, pool: CertPool, name: string, count: number, createdAt = Math.floor(Date.now() / 1000) - 60 - count): void {
  state[name] = Array.from({ length: count }, (_, k) => storedVersion(pool, k, createdAt + k));
}

/** Writes the dev vault's `<stateDir>/secrets.json` (mode 0600: it holds private keys). */
export function saveVaultState(stateDir: string, state: VaultState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(stateDir, 'secrets.json'), JSON.stringify({ secrets: state }), { mode: 0o600 });
}

/** The observed certificates of settings naming secrets [from, from + count) of `vaultUrl`, stored in `storeDir`. */
export function observedCertificates(vaultUrl: string, storeDir: string, from: number, count: number): ObservedCertificate[] {
  return observedByName(
    vaultUrl,
    storeDir,
    Array.from({ length: count }, (_, k) => secretName(from + k)),
  );
}

/** The observed certificates of settings naming these secrets of `vaultUrl`, stored in `storeDir`. */
export function observedByName(vaultUrl: string, storeDir: string, names: readonly string[]): ObservedCertificate[] {
  const result = parseSettings(
    {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: names.map((name) => ({ url: `${vaultUrl}/secrets/${name}`, certificateStoreLocation: storeDir })),
      },
    },
    { platform: 'linux', env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' } },
  );
  if (!result.ok) throw new Error(`bench settings rejected: ${JSON.stringify(result.problems)}`);
  return result.config.observedCertificates;
}
