/**
 * Issue 13 (Low): an expired certificate that the chain check does not cover (no server-auth EKU) was installed
 * and reported as plain success. It is still installed (the Microsoft extension installs it too, and it may be
 * all the machine has), but its substatus now warns, with the fix.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { syncCertificate } from '../handler/engine/certificateSync.js';
import { parseSettings } from '../handler/settings/index.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { OpensslFactory, pemSecret } from './helpers/openssl.js';

const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const DAY = 86_400_000;
let vault: DevVault;
let pki: OpensslFactory;
let dir: string;

before(async () => {
  vault = await startDevVault({ port: 0 });
  pki = await OpensslFactory.create();
  dir = await mkdtemp(join(tmpdir(), 'kvvm-expired-'));
});
after(async () => {
  await vault.close();
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

test('an expired client-auth certificate is installed with a warning and the fix in its result, not as plain success', async () => {
  const ca = pki.rootCa('expired-ca');
  const leaf = pki.leaf('expired-client', ca, { serverAuth: false, notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
  // A secret whose expiry attribute was set later than the certificate's (az keyvault secret set --expires).
  vault.setSecret('client', pemSecret(leaf.keyPem, leaf.certPem, ca.certPem), { contentType: 'application/x-pem-file', expiresOn: new Date(Date.now() + 365 * DAY) });
  const parsed = parseSettings(
    { secretsManagementSettings: { observedCertificates: [{ url: `${vault.vaultUrl}/secrets/client`, certificateStoreLocation: join(dir, 'store') }] } },
    { platform: 'linux', env },
  );
  assert.ok(parsed.ok);
  const cert = parsed.config.observedCertificates[0]!;
  const reader = createVaultReader({ authentication: { msiEndpoint: vault.imdsEndpoint }, env, tlsCa: [vault.caCertPem] });
  const result = await syncCertificate(cert, {
    vault: reader,
    store: createPemStore({}),
    parse: parseCertificateSecret,
    checkChain: makeChainCheck([]),
    now: () => new Date(),
    log: silent,
  });
  assert.equal(result.state, 'installed');
  assert.match(result.message ?? '', /^Warning: the installed certificate [0-9A-F]{40} expired on \S+; .* Fix: renew the certificate in Key Vault/);
});
