/**
 * Every recorded Key Vault secret, served by the dev vault and synced by the engine into the PEM store:
 * installed when its (self-signed, server-auth) certificate is trusted at a pinned clock inside its validity,
 * refused with a clear reason when it is not trusted or has expired.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { parseSettings } from '../handler/settings/index.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { syncCertificate } from '../handler/engine/certificateSync.js';
import { linuxTarget, type ObservedCertificate } from '../handler/settings/config.js';
import { loadSecretVectors, readmeFingerprints } from './helpers/vectors.js';

const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
let vault: DevVault;
let dir: string;

before(async () => {
  vault = await startDevVault({ port: 0 });
  dir = await mkdtemp(join(tmpdir(), 'kvvm-vectors-'));
});
after(async () => {
  await vault.close();
  await rm(dir, { recursive: true, force: true });
});

function observed(name: string, store: string): ObservedCertificate {
  const parsed = parseSettings(
    { secretsManagementSettings: { observedCertificates: [{ url: `${vault.vaultUrl}/secrets/${name}`, certificateStoreLocation: store }] } },
    { platform: 'linux', env },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.config.observedCertificates[0]!;
}

const vectors = loadSecretVectors();
const fingerprints = readmeFingerprints();

test('all recorded secrets are in the catalogue', () => {
  assert.equal(vectors.length, 3);
});

for (const vector of vectors) {
  const name = vector.file.replace(/\.json$/, '');
  test(`${vector.file}: installed when trusted at a pinned clock, refused when untrusted or expired`, async () => {
    vault.setSecret(name, vector.value, { contentType: vector.contentType });
    const reader = createVaultReader({ authentication: { msiEndpoint: vault.imdsEndpoint }, env, tlsCa: [vault.caCertPem] });
    const material = parseCertificateSecret(vector.value, vector.contentType);
    const inside = new Date((vector.notBefore.getTime() + vector.expires.getTime()) / 2);
    const base = { vault: reader, store: createPemStore({}), parse: parseCertificateSecret, log: silent };

    const untrustedStore = join(dir, `${name}-untrusted`);
    const refused = await syncCertificate(observed(name, untrustedStore), { ...base, checkChain: makeChainCheck([]), now: () => inside });
    assert.equal(refused.state, 'error');
    assert.equal(refused.reason, 'chain-untrusted-root');
    assert.match(refused.message ?? '', /Fix: \S/);
    assert.equal(refused.activeVersion, undefined, 'nothing of a refused certificate is installed');

    const expired = await syncCertificate(observed(name, join(dir, `${name}-late`)), {
      ...base,
      checkChain: makeChainCheck([material.leaf]),
      now: () => new Date('2026-11-23T00:00:00Z'),
    });
    assert.equal(expired.state, 'error');
    assert.equal(expired.reason, 'chain-expired');

    const store = join(dir, `${name}-trusted`);
    const cert = observed(name, store);
    const ok = await syncCertificate(cert, { ...base, checkChain: makeChainCheck([material.leaf]), now: () => inside });
    assert.equal(ok.state, 'installed', ok.message);
    const expected = fingerprints.get(vector.file)?.replace(/:/g, '');
    assert.ok(expected);
    assert.equal(ok.thumbprint, expected);
    const pem = await readFile(join(store, linuxTarget(cert).linkName), 'utf8');
    assert.equal(new X509Certificate(pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----'))).fingerprint.replace(/:/g, ''), expected);
  });
}
