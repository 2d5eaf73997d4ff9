/**
 * The Windows rows of docs/versions.md that need no Windows: the PFXImportCertStore flags each profile passes, the
 * Microsoft CSP Name attribute carried from Key Vault's PFX into the import PFX (what makes PFXImportCertStore's
 * default choose CAPI1 under 3.x), and the settings verdicts of each profile on Windows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { readPkcs12 } from '../../../handler/certs/pkcs12.js';
import { windowsTarget } from '../../../handler/settings/config.js';
import { parseSettings } from '../../../handler/settings/parse.js';
import { profileFor } from '../../../handler/settings/profile.js';
import { pfxImportFlags } from '../../../handler/stores/windows/flags.js';
import { buildImportPfx } from '../../../handler/stores/windows/pfx.js';
import { loadSecretVectors } from '../../helpers/vectors.js';

const P3 = profileFor('3.0', 'win32', 'option');
const P4 = profileFor('4.0', 'win32', 'option');
const KEY_VAULT_CSP = 'Microsoft Enhanced RSA and AES Cryptographic Provider';

describe('PFXImportCertStore flags per profile', () => {
  it('3.x: no CNG flag and no KeyGuard, whatever the probe said; keyExportable honoured (CRYPT_EXPORTABLE)', () => {
    for (const cng of [true, false]) {
      assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng, keyGuard: true, keyStorage: P3.windowsKeyStorage }), 0x20);
      assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: true, cng, keyStorage: P3.windowsKeyStorage }), 0x21);
      assert.equal(pfxImportFlags({ location: 'CurrentUser', keyExportable: false, cng, keyStorage: P3.windowsKeyStorage }), 0x1000);
    }
  });
  it('4.x: PKCS12_PREFER_CNG_KSP where the platform imports into CNG, PKCS12_VIRTUAL_ISOLATION_KEY with KeyGuard', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: true, keyStorage: P4.windowsKeyStorage }), 0x120);
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: true, keyGuard: true, keyStorage: P4.windowsKeyStorage }), 0x10120);
  });
});

describe('the PFX provider attribute (3.0 FAQ: PFXImportCertStore default)', () => {
  const pkcs12 = loadSecretVectors().filter((v) => v.contentType === 'application/x-pkcs12');
  it('Key Vault PFX secrets name the CAPI1 provider, and parsing keeps it', () => {
    assert.ok(pkcs12.length > 0, 'no recorded PKCS#12 vectors');
    for (const v of pkcs12) assert.equal(parseCertificateSecret(v.value, v.contentType).keyProvider, KEY_VAULT_CSP, v.file);
  });
  it('the import PFX carries the provider name when asked (3.x) and none otherwise (4.x)', () => {
    const m = parseCertificateSecret(pkcs12[0]!.value, pkcs12[0]!.contentType);
    const with3 = buildImportPfx(m.leaf, m.privateKey, 'pw', { cspName: m.keyProvider });
    const without = buildImportPfx(m.leaf, m.privateKey, 'pw');
    const read = (der: Buffer): unknown => readPkcs12WithPassword(der);
    assert.deepEqual(read(with3.der), [KEY_VAULT_CSP]);
    assert.deepEqual(read(without.der), [undefined]);
  });
  it('a PEM secret has no provider attribute: PFXImportCertStore then imports into CNG', () => {
    const pem = loadSecretVectors().find((v) => v.contentType === 'application/x-pem-file');
    assert.ok(pem);
    assert.equal(parseCertificateSecret(pem.value, pem.contentType).keyProvider, undefined);
  });
});

/** The key bags' CSP names of an import PFX (one-time password 'pw'), read by kvvm's own PKCS#12 reader. */
function readPkcs12WithPassword(der: Buffer): Array<string | undefined> | undefined {
  return readPkcs12(der, 'pw').keyProviders;
}

describe('settings verdicts on Windows per profile', () => {
  const settings = {
    secretsManagementSettings: {
      linkOnRenewal: false,
      requireInitialSync: false,
      pollingIntervalInS: '30',
      observedCertificates: [{ url: 'https://myvault.vault.azure.net/secrets/web/0123456789abcdef0123456789abcdef', keyExportable: true }],
    },
  };
  it('3.x Windows honours linkOnRenewal, keyExportable, the pinned version and a 30 s interval (with a warning)', () => {
    const r = parseSettings(settings, { platform: 'win32', env: {}, profile: P3 });
    assert.ok(r.ok, JSON.stringify(r));
    if (!r.ok) return;
    assert.deepEqual([r.config.linkOnRenewal, r.config.initialSync, r.config.pollingIntervalS], [false, 'none', 30]);
    assert.deepEqual([windowsTarget(r.config.observedCertificates[0]!).keyExportable, r.config.observedCertificates[0]?.pinnedVersion], [true, '0123456789abcdef0123456789abcdef']);
    assert.ok(r.config.warnings.some((w) => /below 60 s/.test(w.message)));
  });
  it('4.x Windows refuses each of them, naming the key and the fix', () => {
    const r = parseSettings(settings, { platform: 'win32', env: {}, profile: P4 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.problems
        .filter((p) => p.reason === 'removed-in-4.0')
        .map((p) => p.path)
        .sort(),
      [
        '/secretsManagementSettings/linkOnRenewal',
        '/secretsManagementSettings/observedCertificates/0/keyExportable',
        '/secretsManagementSettings/observedCertificates/0/url',
        '/secretsManagementSettings/requireInitialSync',
      ],
    );
    for (const p of r.problems) assert.match(p.fix, /typeHandlerVersion "3\.0"/);
  });
});
