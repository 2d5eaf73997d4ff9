import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CertificateMaterial, CertificateVersionId } from '../../../handler/certs/material.js';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { KvvmError } from '../../../handler/errors.js';
import { ENCODING, findBySha1, deleteCertificate, withSystemStore } from '../../../handler/platform/win32/certStore.js';
import { verifyServerAuthChain, windowsChainError } from '../../../handler/stores/windows/chain.js';
import { CERT_STORE_ADD_USE_EXISTING, loadNative } from '../../../handler/platform/win32/native.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import type { InstalledCertificate } from '../../../handler/stores/store.js';
import { loadSecretVectors } from '../../helpers/vectors.js';
import { deleteSystemStore, dumpInFreshProcess, observed, uniqueStoreName, VAULT } from './fixture.js';

/**
 * What the Windows store leaves in crypt32, read back by a FRESH Windows node process (dumpStores.js).
 * Chains come from openssl on the Linux side (run.ts writes them to KVVM_WINE_FIXTURES before starting Wine).
 */
interface ChainFixtures {
  trustedRootPem: string;
  trustedSecret: string;
  untrustedSecret: string;
}

function chainFixtures(): ChainFixtures {
  const dir = process.env['KVVM_WINE_FIXTURES'];
  if (!dir) throw new Error('KVVM_WINE_FIXTURES is not set: run these tests through `npm run test:windows`, which makes the openssl chains');
  return JSON.parse(readFileSync(join(dir, 'chains.json'), 'utf8')) as ChainFixtures;
}

const pem = (secret: string): CertificateMaterial => parseCertificateSecret(secret, 'application/x-pem-file');
const id = (secret: string, n: number): CertificateVersionId => ({ vaultName: VAULT, secretName: secret, version: `${n}`.padStart(32, 'a') });

describe('Windows store: what a fresh process finds in crypt32', () => {
  const created: Array<['CurrentUser' | 'LocalMachine', string]> = [];
  const fresh = (location: 'CurrentUser' | 'LocalMachine'): string => {
    const s = uniqueStoreName();
    created.push([location, s]);
    return s;
  };
  after(() => {
    for (const [location, name] of created) deleteSystemStore(location, name);
  });

  it('every Key Vault vector (PKCS#12 and PEM) lands in the configured store with its friendly name and a usable key', async () => {
    const storeName = fresh('CurrentUser');
    const store = createWindowsStore();
    for (const [i, v] of loadSecretVectors().entries()) {
      const target = observed('CurrentUser', storeName, `vector${i}`);
      const material = parseCertificateSecret(v.value, v.contentType);
      await store.install(target, id(target.secretName, 1), material);
      const dump = dumpInFreshProcess([`CurrentUser\\${storeName}`]);
      const entry = dump[`CurrentUser\\${storeName}`]?.find((c) => c.thumbprint === material.thumbprint);
      assert.ok(entry, `${v.file}: ${material.thumbprint} not in the store`);
      assert.equal(entry.friendlyName, `kvvm:${VAULT}/${target.secretName}/${id(target.secretName, 1).version}`, v.file);
      assert.equal(entry.privateKeyUsable, true, `${v.file}: CryptAcquireCertificatePrivateKey failed`);
      await store.removeAll(target);
    }
    assert.deepEqual(dumpInFreshProcess([`CurrentUser\\${storeName}`])[`CurrentUser\\${storeName}`], []);
  });

  it('the leaf goes to the configured store, the intermediate to CA, the root nowhere', async () => {
    const { untrustedSecret } = chainFixtures();
    const material = pem(untrustedSecret);
    const [intermediate, root] = material.chain as [typeof material.leaf, typeof material.leaf];
    assert.ok(intermediate && root, 'fixture: leaf + intermediate + root');
    const storeName = fresh('LocalMachine');
    const target = observed('LocalMachine', storeName, 'chained');
    await createWindowsStore().install(target, id('chained', 1), material);
    const dump = dumpInFreshProcess([`LocalMachine\\${storeName}`, 'LocalMachine\\CA', 'LocalMachine\\Root', 'CurrentUser\\Root', 'CurrentUser\\CA']);
    const thumb = (c: typeof material.leaf) => c.fingerprint.replace(/:/g, '');
    assert.deepEqual(
      dump[`LocalMachine\\${storeName}`]?.map((c) => c.thumbprint),
      [material.thumbprint],
    );
    assert.ok(
      dump['LocalMachine\\CA']?.some((c) => c.thumbprint === thumb(intermediate)),
      'intermediate in LocalMachine\\CA',
    );
    for (const where of ['LocalMachine\\Root', 'CurrentUser\\Root', 'LocalMachine\\CA', 'CurrentUser\\CA']) {
      assert.ok(!dump[where]?.some((c) => c.thumbprint === thumb(root)), `root must not be in ${where}`);
    }
    // Clean the shared CA store again (the store never removes intermediates: other certificates may need them).
    withSystemStore(loadNative(), 'LocalMachine', 'CA', 'write', (ca) => {
      const ctx = ca && findBySha1(loadNative(), ca, thumb(intermediate));
      if (ctx) deleteCertificate(loadNative(), ctx, 'the test intermediate');
    });
  });

  it('keeps two versions and links the old one to its successor with CERT_RENEWAL_PROP_ID', async () => {
    const storeName = fresh('LocalMachine');
    const target = observed('LocalMachine', storeName, 'renewed');
    const store = createWindowsStore({ linkOnRenewal: true });
    const materials = loadSecretVectors()
      .slice(0, 3)
      .map((v) => parseCertificateSecret(v.value, v.contentType));
    let previous: InstalledCertificate | undefined;
    for (const [i, m] of materials.entries()) {
      await store.install(target, id('renewed', i + 1), m);
      await store.activate(target, id('renewed', i + 1), previous);
      previous = (await store.list(target))[0];
    }
    const oldest = (await store.list(target))[2] as InstalledCertificate;
    await store.remove(target, oldest);
    const entries = dumpInFreshProcess([`LocalMachine\\${storeName}`])[`LocalMachine\\${storeName}`] ?? [];
    const [m1, m2, m3] = materials as [CertificateMaterial, CertificateMaterial, CertificateMaterial];
    assert.deepEqual(entries.map((e) => e.thumbprint).sort(), [m2.thumbprint, m3.thumbprint].sort(), 'two newest kept, oldest gone');
    assert.ok(!entries.some((e) => e.thumbprint === m1.thumbprint));
    assert.equal(entries.find((e) => e.thumbprint === m2.thumbprint)?.renewal, m3.thumbprint, 'old version points at the new SHA-1');
    assert.equal(entries.find((e) => e.thumbprint === m3.thumbprint)?.renewal, undefined, 'the active version has no successor');
    assert.deepEqual(
      (await store.list(target)).map((e) => [e.thumbprint, e.active]),
      [
        [m3.thumbprint, true],
        [m2.thumbprint, false],
      ],
    );
  });

  it('without linkOnRenewal no renewal property is written', async () => {
    const storeName = fresh('CurrentUser');
    const target = observed('CurrentUser', storeName, 'unlinked');
    const store = createWindowsStore({ linkOnRenewal: false });
    const [a, b] = loadSecretVectors().map((v) => parseCertificateSecret(v.value, v.contentType)) as [CertificateMaterial, CertificateMaterial];
    const first = await store.install(target, id('unlinked', 1), a);
    await store.activate(target, id('unlinked', 1), undefined);
    await store.install(target, id('unlinked', 2), b);
    await store.activate(target, id('unlinked', 2), { ...first, active: true });
    const entries = dumpInFreshProcess([`CurrentUser\\${storeName}`])[`CurrentUser\\${storeName}`] ?? [];
    assert.equal(entries.length, 2);
    assert.ok(entries.every((e) => e.renewal === undefined));
  });

  it('an account that does not exist is refused before anything is imported', async () => {
    const storeName = fresh('CurrentUser');
    const target = observed('CurrentUser', storeName, 'acl', { accounts: ['Network Service', 'kvvm-no-such-user-7f3a'] });
    const [v] = loadSecretVectors();
    await assert.rejects(
      createWindowsStore().install(target, id('acl', 1), parseCertificateSecret(v?.value ?? '', v?.contentType)),
      (e: unknown) => e instanceof KvvmError && e.reason === 'windows-account-unknown',
    );
    assert.deepEqual(dumpInFreshProcess([`CurrentUser\\${storeName}`])[`CurrentUser\\${storeName}`] ?? [], []);
  });
});

describe('Windows chain validation (CertGetCertificateChain + SSL policy + dwErrorStatus)', () => {
  let fixtures: ChainFixtures;
  let rootThumbprint: string;
  before(() => {
    fixtures = chainFixtures();
    // Test roots go to CurrentUser\Root: Wine fills LocalMachine\Root from the host bundle and rebuilds it.
    const root = new X509Certificate(fixtures.trustedRootPem);
    rootThumbprint = root.fingerprint.replace(/:/g, '');
    const n = loadNative();
    withSystemStore(n, 'CurrentUser', 'Root', 'write', (store) => {
      if (!n.CertAddEncodedCertificateToStore(store, ENCODING, root.raw, root.raw.length, CERT_STORE_ADD_USE_EXISTING, null)) throw new Error('cannot add the test root');
    });
  });
  after(() => {
    const n = loadNative();
    withSystemStore(n, 'CurrentUser', 'Root', 'write', (store) => {
      const ctx = store && findBySha1(n, store, rootThumbprint);
      if (ctx) deleteCertificate(n, ctx, 'the test root');
    });
  });

  it('accepts a server-auth leaf whose root is trusted', () => {
    const verdict = verifyServerAuthChain(pem(fixtures.trustedSecret), 'CurrentUser');
    assert.deepEqual(verdict, { ok: true, errorStatus: 0, policyError: 0 });
    assert.equal(windowsChainError(pem(fixtures.trustedSecret), 'CurrentUser'), undefined);
  });

  it('refuses a server-auth leaf whose root is not trusted, naming CERT_TRUST_IS_UNTRUSTED_ROOT', () => {
    const verdict = verifyServerAuthChain(pem(fixtures.untrustedSecret), 'CurrentUser');
    assert.equal(verdict.ok, false);
    assert.notEqual(verdict.errorStatus & 0x20, 0, `dwErrorStatus 0x${verdict.errorStatus.toString(16)}`);
    const err = windowsChainError(pem(fixtures.untrustedSecret), 'CurrentUser');
    assert.ok(err instanceof KvvmError && err.reason === 'chain-untrusted' && err.message.includes('CERT_TRUST_IS_UNTRUSTED_ROOT'), String(err));
  });
});
