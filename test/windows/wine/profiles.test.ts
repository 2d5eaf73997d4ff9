/**
 * The crypt32 arguments of each Windows profile, observed on the real PFXImportCertStore under Wine: the store is
 * given the real bindings with PFXImportCertStore wrapped to record its flags and the PFX it was handed, and the
 * certificate must land in the store (read back by CertFindCertificateInStore through the store's own list()).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readPkcs12 } from '../../../handler/certs/pkcs12.js';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { profileFor } from '../../../handler/settings/profile.js';
import { loadNative, type Native } from '../../../handler/platform/win32/native.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import { loadSecretVectors } from '../../helpers/vectors.js';
import { deleteSystemStore, observed, uniqueStoreName } from './fixture.js';

interface ImportCall {
  flags: number;
  csp: string | undefined;
}

/** The real bindings, with PFXImportCertStore's arguments recorded (flags, and the CSP name inside the PFX). */
function recordingNative(calls: ImportCall[]): () => Native {
  return () => {
    const n = loadNative();
    const real = n.PFXImportCertStore.bind(n);
    const wrapped = (blob: { pbData: Buffer }, password: string, flags: number): unknown => {
      calls.push({ flags: flags >>> 0, csp: readPkcs12(blob.pbData, password).keyProviders?.[0] });
      return real(blob, password, flags);
    };
    return { ...n, PFXImportCertStore: wrapped as unknown as Native['PFXImportCertStore'] };
  };
}

describe('PFXImportCertStore per profile, under Wine', () => {
  const created: string[] = [];
  after(() => {
    for (const s of created) deleteSystemStore('CurrentUser', s);
  });
  const vector = loadSecretVectors().find((v) => v.contentType === 'application/x-pkcs12');

  for (const line of ['3.0', '4.0'] as const) {
    const profile = profileFor(line, 'win32', 'option');
    it(`${profile.line}: ${line === '3.0' ? "one import, no CNG flag, the PFX keeps Key Vault's CAPI1 provider name" : 'a non-persisting CNG probe, then PKCS12_PREFER_CNG_KSP if the platform has CNG (Wine: it has not), no provider name'}`, async () => {
      assert.ok(vector, 'no recorded PKCS#12 vector');
      const calls: ImportCall[] = [];
      const storeName = uniqueStoreName();
      created.push(storeName);
      const store = createWindowsStore({ native: recordingNative(calls), keyStorage: profile.windowsKeyStorage });
      const target = observed('CurrentUser', storeName, `profile${line.replace('.', '')}`, { keyExportable: false });
      const material = parseCertificateSecret(vector.value, vector.contentType);
      await store.install(target, { vaultName: target.vaultName, secretName: target.secretName, version: 'a'.repeat(32) }, material);
      assert.ok(
        (await store.list(target)).some((c) => c.thumbprint === material.thumbprint),
        'installed',
      );
      if (line === '3.0') {
        assert.deepEqual(calls, [{ flags: 0x1000, csp: 'Microsoft Enhanced RSA and AES Cryptographic Provider' }]);
      } else {
        assert.deepEqual(calls[0], { flags: 0x8100, csp: undefined }, 'the CNG probe: PKCS12_PREFER_CNG_KSP | PKCS12_NO_PERSIST_KEY');
        const last = calls.at(-1);
        assert.ok(last && (last.flags === 0x1000 || (last.flags & 0x100) !== 0), `import flags 0x${last?.flags.toString(16)}`);
        assert.equal(last?.csp, undefined);
      }
      await store.removeAll(target);
    });
  }
});
