import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import type { CertificateMaterial, CertificateVersionId } from '../handler/certs/material.js';
import { notAfterOf, parseCertificateSecret } from '../handler/certs/parse.js';
import type { ObservedCertificate } from '../handler/settings/config.js';
import type { CertificateStore, InstalledCertificate } from '../handler/stores/store.js';
import { loadSecretVectors } from './helpers/vectors.js';

/**
 * The ONE contract suite every CertificateStore implementation runs (see handler/stores/store.ts).
 * Materials are the recorded Key Vault secrets: three real, distinct certificates with keys.
 */

export interface StoreFixture {
  store: CertificateStore;
  /** An observed certificate named `name`, every call with the same name giving the same target. */
  cert: (name: string) => ObservedCertificate;
  cleanup(): Promise<void>;
}

export type MakeStore = () => Promise<StoreFixture>;

interface Version {
  id: CertificateVersionId;
  material: CertificateMaterial;
}

function versionsFor(cert: ObservedCertificate): Version[] {
  return loadSecretVectors().map((v, i) => ({
    // Distinct, sortable fake versions: install order is what the contract is about, not the ids.
    id: { vaultName: cert.vaultName, secretName: cert.secretName, version: `${i + 1}`.padStart(32, '0') },
    material: parseCertificateSecret(v.value, v.contentType),
  }));
}

async function withStore(makeStore: MakeStore, fn: (f: StoreFixture) => Promise<void>): Promise<void> {
  const fixture = await makeStore();
  try {
    await fn(fixture);
  } finally {
    await fixture.cleanup();
  }
}

function summary(list: InstalledCertificate[]): Array<[string, boolean]> {
  return list.map((e) => [e.version, e.active]);
}

export function runStoreContract(name: string, makeStore: MakeStore): void {
  describe(`CertificateStore contract: ${name}`, () => {
    it('an installed version is listed inactive with the thumbprint and expiry of its certificate', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1] = versionsFor(target) as [Version];
        const entry = await store.install(target, v1.id, v1.material);
        assert.equal(entry.version, v1.id.version);
        assert.equal(entry.thumbprint, v1.material.thumbprint);
        assert.equal(entry.notAfter.getTime(), notAfterOf(v1.material.leaf).getTime());
        assert.equal(entry.active, false);
        assert.deepEqual(summary(await store.list(target)), [[v1.id.version, false]]);
      }));

    it('activate makes the installed version the active one', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1] = versionsFor(target) as [Version];
        await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        const [listed] = await store.list(target);
        assert.equal(listed?.active, true);
        assert.equal(listed?.thumbprint, v1.material.thumbprint);
      }));

    it('installing the same version twice changes nothing and returns the same entry', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1] = versionsFor(target) as [Version];
        const first = await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        const again = await store.install(target, v1.id, v1.material);
        assert.deepEqual({ ...again, active: false }, { ...first, active: false });
        assert.equal(again.active, true, 'the entry reports the current state');
        assert.deepEqual(summary(await store.list(target)), [[v1.id.version, true]]);
      }));

    it('activating a newer version switches the active flag and lists newest install first', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1, v2] = versionsFor(target) as [Version, Version];
        const e1 = await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        await store.install(target, v2.id, v2.material);
        assert.deepEqual(summary(await store.list(target)), [
          [v2.id.version, false],
          [v1.id.version, true],
        ]);
        await store.activate(target, v2.id, { ...e1, active: true });
        assert.deepEqual(summary(await store.list(target)), [
          [v2.id.version, true],
          [v1.id.version, false],
        ]);
      }));

    it('install order, not version order, decides what is newest', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1, v2, v3] = versionsFor(target) as [Version, Version, Version];
        for (const v of [v3, v1, v2]) await store.install(target, v.id, v.material);
        assert.deepEqual(
          (await store.list(target)).map((e) => e.version),
          [v2.id.version, v1.id.version, v3.id.version],
        );
      }));

    it('the caller keeps the two newest versions by removing the oldest inactive one', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const versions = versionsFor(target);
        let previous: InstalledCertificate | undefined;
        for (const v of versions) {
          await store.install(target, v.id, v.material);
          await store.activate(target, v.id, previous);
          previous = (await store.list(target))[0];
        }
        const all = await store.list(target);
        assert.equal(all.length, 3);
        await store.remove(target, all[2] as InstalledCertificate);
        assert.deepEqual(summary(await store.list(target)), [
          [versions[2]?.id.version ?? '', true],
          [versions[1]?.id.version ?? '', false],
        ]);
      }));

    it('remove never removes the active version', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1] = versionsFor(target) as [Version];
        await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        const [active] = await store.list(target);
        // Refusing (KvvmError) or ignoring both honour the contract; removing does not.
        await store.remove(target, active as InstalledCertificate).catch((err: unknown) => assert.ok(err instanceof KvvmError, String(err)));
        assert.deepEqual(summary(await store.list(target)), [[v1.id.version, true]]);
      }));

    it('removing a version that is not installed resolves', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1, v2] = versionsFor(target) as [Version, Version];
        const e1 = await store.install(target, v1.id, v1.material);
        await store.remove(target, { ...e1, version: v2.id.version, active: false });
        await store.remove(cert('never-installed'), { ...e1, secretName: 'never-installed', active: false });
        assert.equal((await store.list(target)).length, 1);
      }));

    it('listing a certificate that was never installed gives an empty list', () =>
      withStore(makeStore, async ({ store, cert }) => {
        assert.deepEqual(await store.list(cert('never-installed')), []);
      }));

    it('removeAll removes every version of one certificate and leaves the others', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const alpha = cert('alpha');
        const beta = cert('beta');
        for (const target of [alpha, beta]) {
          const [v1, v2] = versionsFor(target) as [Version, Version];
          await store.install(target, v1.id, v1.material);
          await store.activate(target, v1.id, undefined);
          await store.install(target, v2.id, v2.material);
        }
        await store.removeAll(alpha);
        assert.deepEqual(await store.list(alpha), []);
        assert.equal((await store.list(beta)).length, 2);
        await store.removeAll(alpha); // again: nothing left, still fine
        await store.removeAll(beta);
        assert.deepEqual(await store.list(beta), []);
      }));

    it('a failed install leaves the installed versions and the active one as they were', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1, v2] = versionsFor(target) as [Version, Version];
        await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        const before = await store.list(target);
        // A public key where the private key belongs: no store can serialise or import it.
        const broken = { ...v2.material, privateKey: createPublicKey(v2.material.privateKey) };
        await assert.rejects(store.install(target, v2.id, broken), KvvmError);
        assert.deepEqual(await store.list(target), before);
      }));

    it('activating a version that is not installed is refused and keeps the active version', () =>
      withStore(makeStore, async ({ store, cert }) => {
        const target = cert('alpha');
        const [v1, v2] = versionsFor(target) as [Version, Version];
        await store.install(target, v1.id, v1.material);
        await store.activate(target, v1.id, undefined);
        await assert.rejects(store.activate(target, v2.id, undefined), KvvmError);
        assert.deepEqual(summary(await store.list(target)), [[v1.id.version, true]]);
      }));
  });
}
