import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { toPemSecret } from '../../../handler/devvault/certFactory.js';
import { issueWineImportableCertificate } from '../../helpers/wineKeys.js';
import { keyGuardProbeFlags, probeImport } from '../../../handler/stores/windows/keyGuard.js';
import { loadNative } from '../../../handler/platform/win32/native.js';
import { buildImportPfx } from '../../../handler/stores/windows/pfx.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import { deleteSystemStore, dumpInFreshProcess, observed, uniqueStoreName, VAULT, underWine } from './fixture.js';

/**
 * KeyGuard where it cannot exist (Wine: no VBS, no CNG PFX flags): the probe answers "unsupported" and a
 * non-exportable certificate is imported the plain way, with a usable key, and is not reported as KeyGuard.
 * On a Windows Server 2025 with VBS the same test shows the opposite (location and probe must agree).
 */
describe('KeyGuard probe and fallback in crypt32', () => {
  const storeName = uniqueStoreName();
  after(() => deleteSystemStore('CurrentUser', storeName));
  const issued = issueWineImportableCertificate({ subjectCn: 'kvvm-wine-keyguard', serverAuth: false });
  const material = parseCertificateSecret(toPemSecret(issued.keyPem, [issued.certPem]), 'application/x-pem-file');

  it('the probe (a non-persisted import with PKCS12_VIRTUAL_ISOLATION_KEY) answers unsupported under Wine', () => {
    const supported = probeImport(loadNative(), buildImportPfx(material.leaf, material.privateKey), keyGuardProbeFlags());
    if (underWine()) assert.equal(supported, false);
    else assert.equal(typeof supported, 'boolean');
  });

  it('a non-exportable certificate falls back to the plain import: installed, key usable, not labelled KeyGuard', async () => {
    const supported = probeImport(loadNative(), buildImportPfx(material.leaf, material.privateKey), keyGuardProbeFlags());
    const target = observed('CurrentUser', storeName, 'kg', { keyExportable: false });
    const installed = await createWindowsStore().install(target, { vaultName: VAULT, secretName: 'kg', version: 'c'.repeat(32) }, material);
    assert.equal(installed.location, supported ? `CurrentUser\\${storeName} (KeyGuard)` : `CurrentUser\\${storeName}`);
    const entry = dumpInFreshProcess([`CurrentUser\\${storeName}`])[`CurrentUser\\${storeName}`]?.find((c) => c.thumbprint === material.thumbprint);
    assert.equal(entry?.privateKeyUsable, true);
    assert.equal((JSON.parse((entry?.description ?? 'kvvm:{}').slice(5)) as { keyGuard?: boolean }).keyGuard, supported ? true : undefined);
  });
});
