import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { buildImportPfx } from '../../../handler/stores/windows/pfx.js';
import { OpensslFactory, pemSecret } from '../../helpers/openssl.js';
import { loadSecretVectors } from '../../helpers/vectors.js';

/** Reads a PFX with the real openssl CLI: key + certificates as PEM. */
function opensslPkcs12(der: Buffer, password: string): string {
  return execFileSync('openssl', ['pkcs12', '-nodes', '-passin', `pass:${password}`], { input: der, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('the PKCS#12 handed to PFXImportCertStore', () => {
  let factory: OpensslFactory;
  before(async () => {
    factory = await OpensslFactory.create();
  });
  after(() => factory.cleanup());

  it('holds exactly the leaf and its key, under a one-time password, with legacy algorithms every Windows imports', () => {
    for (const v of loadSecretVectors()) {
      const m = parseCertificateSecret(v.value, v.contentType);
      const pfx = buildImportPfx(m.leaf, m.privateKey);
      assert.ok(pfx.password.length >= 20);
      const text = opensslPkcs12(pfx.der, pfx.password);
      const parsed = parseCertificateSecret(text, 'application/x-pem-file');
      assert.equal(parsed.thumbprint, m.thumbprint, v.file);
      assert.equal(parsed.chain.length, 0);
      const info = execFileSync('openssl', ['pkcs12', '-info', '-noout', '-passin', `pass:${pfx.password}`], { input: pfx.der, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      assert.doesNotMatch(info, /PBES2|AES/i);
      assert.throws(() => opensslPkcs12(pfx.der, 'wrong'));
    }
  });

  it('EC keys are packaged too (Wine cannot import them; real Windows does)', () => {
    const root = factory.rootCa('ec-root', { keyType: 'ec' });
    const leaf = factory.leaf('ec-leaf', root, { keyType: 'ec' });
    const m = parseCertificateSecret(pemSecret(leaf.keyPem, leaf.certPem), 'application/x-pem-file');
    const pfx = buildImportPfx(m.leaf, m.privateKey);
    const back = parseCertificateSecret(opensslPkcs12(pfx.der, pfx.password), 'application/x-pem-file');
    assert.equal(back.thumbprint, m.thumbprint);
    assert.equal(back.privateKey.asymmetricKeyType, 'ec');
  });

  it('a public key where the private key belongs cannot be packaged', () => {
    const m = parseCertificateSecret(loadSecretVectors()[0]?.value ?? '', loadSecretVectors()[0]?.contentType);
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(() => buildImportPfx(m.leaf, publicKey));
  });
});
