import assert from 'node:assert/strict';
import { randomBytes, verify, X509Certificate } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { toPemSecret } from '../../../handler/devvault/certFactory.js';
import { issueWineImportableCertificate } from '../../helpers/wineKeys.js';
import { KvvmError } from '../../../handler/errors.js';
import { findBootstrapCertificate } from '../../../handler/platform/win32/bootstrapKey.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import { clientAssertion } from '../../../handler/vault/paasAssertion.js';
import { deleteSystemStore, observed, uniqueStoreName, VAULT } from './fixture.js';

/**
 * The PaaS bootstrap certificate, for real in crypt32: found by subject (CERT_FIND_SUBJECT_STR_W) and used to sign
 * a client assertion with the store's NON-exportable key; the signature is verified with node:crypto. CurrentUser
 * and a throw-away store: Wine cannot acquire LocalMachine keys (0x8009200B) and asserts when kvvm adds to
 * CurrentUser\My (docs/windows.md); the LocalMachine\My arguments are asserted in pure/paas.test.ts.
 */
describe('PaaS bootstrap certificate in the Windows store', () => {
  const storeName = uniqueStoreName();
  const subject = `kvvm-wine-bootstrap-${randomBytes(3).toString('hex')}.cloudapp.net`;
  const opts = { location: 'CurrentUser' as const, storeName };
  after(() => deleteSystemStore('CurrentUser', storeName));
  const store = createWindowsStore();
  const install = async (name: string, notBefore: Date, cn = subject) => {
    const issued = issueWineImportableCertificate({ subjectCn: cn, serverAuth: false, notBefore });
    const material = parseCertificateSecret(toPemSecret(issued.keyPem, [issued.certPem]), 'application/x-pem-file');
    await store.install(observed('CurrentUser', storeName, name, { keyExportable: false }), { vaultName: VAULT, secretName: name, version: 'a'.repeat(32) }, material);
    return issued;
  };

  it('nothing with that subject: a paas-certificate-not-found error, not a crash', () => {
    assert.throws(
      () => findBootstrapCertificate(subject, opts),
      (e: unknown) => e instanceof KvvmError && e.reason === 'paas-certificate-not-found',
    );
  });

  it('is found by its subject without "CN=" (and by a part of it), the newest valid one of several', async () => {
    const now = Date.now();
    await install('older', new Date(now - 10 * 86_400_000));
    const newest = await install('newest', new Date(now - 86_400_000));
    await install('future', new Date(now + 86_400_000));
    const found = findBootstrapCertificate(subject, opts);
    assert.equal(found.thumbprint, newest.cert.fingerprint.replace(/:/g, ''));
    assert.deepEqual(found.der, newest.cert.raw);
    assert.equal(findBootstrapCertificate(subject.split('.')[0] ?? '', opts).thumbprint, found.thumbprint);
  });

  it('signs a client assertion with the store key (not exportable); node:crypto verifies it with the certificate', async () => {
    // Its own subject, imported last: Wine keeps ONE key container per user, so only the newest import's key is
    // usable there (Windows gives each import its own container). Its key has full-length components: Wine does not
    // import one with a leading zero byte and would sign with the previous key (test/helpers/wineKeys.ts).
    const signer = `signer-${subject}`;
    const issued = await install('signer', new Date(Date.now() - 60_000), signer);
    const found = findBootstrapCertificate(signer, opts);
    assert.equal(found.thumbprint, issued.cert.fingerprint.replace(/:/g, ''));
    const jwt = clientAssertion(
      {
        clientId: '3c1a6a5e-2b7f-4f0e-9d1c-5a8b7e6f4d21',
        tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
        authorityHost: 'https://login.microsoftonline.com',
        certificateDer: found.der,
        nowMs: Date.now(),
        jti: 'f1e2d3c4-b5a6-4978-8877-665544332211',
      },
      (data) => found.sign(data),
    );
    const [h, c, s] = jwt.split('.') as [string, string, string];
    const publicKey = new X509Certificate(found.der).publicKey;
    assert.equal(verify('sha256', Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, 'base64url')), true);
    assert.equal(verify('sha256', Buffer.from(`${h}.${c}x`), publicKey, Buffer.from(s, 'base64url')), false);
  });
});
