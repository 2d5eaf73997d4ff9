import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import { KvvmError } from '../handler/errors.js';
import { describeCertificate, materialToPem, MAX_SECRET_CHARS, parseCertificateSecret } from '../handler/certs/parse.js';
import { OpensslFactory, opensslRead, pemSecret, type Issued } from './helpers/openssl.js';
import { loadSecretVectors, readmeFingerprints } from './helpers/vectors.js';

const PKCS12 = 'application/x-pkcs12';
const PEM = 'application/x-pem-file';

function rejectsWith(reason: string | string[], fn: () => unknown): void {
  const reasons = Array.isArray(reason) ? reason : [reason];
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KvvmError, `expected KvvmError, got ${String(err)}`);
    assert.ok(reasons.includes(err.reason), `reason ${err.reason}, expected ${reasons.join('|')}: ${err.message}`);
    assert.ok(err.fix && err.fix.length > 0, 'every refusal carries a fix');
    return true;
  });
}

describe('recorded Key Vault secrets', () => {
  const fingerprints = readmeFingerprints();
  const vectors = loadSecretVectors();

  it('the vector folder holds the three recorded certificate secrets', () => {
    assert.deepEqual(
      vectors.map((v) => v.file),
      ['secret-pem-2020.json', 'secret-pkcs12-2020.json', 'secret-pkcs12-2022.json'],
    );
  });

  for (const vector of vectors) {
    it(`${vector.file} parses with the SHA-1 fingerprint the README states`, () => {
      const material = parseCertificateSecret(vector.value, vector.contentType);
      assert.equal(material.thumbprint, fingerprints.get(vector.file));
      assert.equal(material.sourceFormat, vector.contentType === PKCS12 ? 'pkcs12' : 'pem');
      assert.deepEqual(material.chain, []);
      assert.equal(material.privateKey.asymmetricKeyType, 'rsa');
      assert.equal(new Date(material.leaf.validTo).getTime(), vector.expires.getTime());
    });

    it(`${vector.file} is recognised without a content type`, () => {
      assert.equal(parseCertificateSecret(vector.value, undefined).thumbprint, fingerprints.get(vector.file));
    });
  }

  it('the 2020 PKCS#12 (RC2-40 certificate bag, MAC iteration 1) is read without OpenSSL legacy support', () => {
    const vector = vectors.find((v) => v.file === 'secret-pkcs12-2020.json');
    assert.equal(parseCertificateSecret(vector?.value ?? '', PKCS12).thumbprint, '8DAA2B1BD7CCDD803CAE99F2A89CB72E536CBDB5');
  });

  it('materialToPem writes PKCS#8 key then leaf, and openssl reads both back', () => {
    const vector = vectors.find((v) => v.file === 'secret-pkcs12-2022.json');
    const material = parseCertificateSecret(vector?.value ?? '', PKCS12);
    const pem = materialToPem(material);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    assert.equal(
      opensslRead(['x509', '-noout', '-fingerprint', '-sha1'], pem).trim().toUpperCase(),
      'SHA1 FINGERPRINT=43:0C:B3:D0:EC:CC:21:A3:E9:91:A6:B0:2A:87:7D:85:8F:32:C5:D7',
    );
    assert.match(opensslRead(['pkey', '-noout', '-text'], pem), /Private-Key: \(2048 bit/);
  });

  it('describeCertificate gives subject, thumbprint and expiry and nothing from the key', () => {
    const vector = vectors.find((v) => v.file === 'secret-pem-2020.json');
    const material = parseCertificateSecret(vector?.value ?? '', PEM);
    const description = describeCertificate(material.leaf);
    assert.deepEqual(description, { subject: 'CN=MyCert', thumbprint: '84623EE65A1F959F9A429C69E59530D84E21FC44', notAfter: '2021-06-25T12:55:53.000Z' });
    const keyBody = (material.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string).split('\n')[1] ?? '';
    assert.ok(!JSON.stringify(description).includes(keyBody.slice(0, 16)));
  });
});

describe('openssl-made secrets', () => {
  let pki: OpensslFactory;
  const made: Record<string, Issued> = {};
  before(async () => {
    pki = await OpensslFactory.create();
    made['root'] = pki.rootCa('root');
    made['inter'] = pki.intermediate('inter', made['root']);
    made['rsa'] = pki.leaf('leaf-rsa', made['inter'], { keyType: 'rsa' });
    made['ec'] = pki.leaf('leaf-ec', made['inter'], { keyType: 'ec' });
  });
  after(() => pki.cleanup());
  const get = (name: string): Issued => made[name] as Issued;

  for (const keyType of ['rsa', 'ec'] as const) {
    for (const mode of ['legacy', 'modern'] as const) {
      it(`a ${mode} PKCS#12 with an ${keyType.toUpperCase()} key gives the leaf and its chain in issuer order`, () => {
        const leaf = get(keyType);
        const b64 = pki.pkcs12(leaf, [get('root'), get('inter')], { mode });
        const info = pki.pkcs12Info(b64);
        assert.match(info, mode === 'legacy' ? /RC2-40|40BitRC2/ : /AES-256-CBC/, 'the file uses the algorithms the test claims');
        const material = parseCertificateSecret(b64, PKCS12);
        assert.equal(material.leaf.fingerprint, leaf.cert.fingerprint);
        assert.deepEqual(
          material.chain.map((c) => c.subject),
          ['CN=inter', 'CN=root'],
        );
        assert.equal(material.privateKey.asymmetricKeyType, keyType);
        assert.equal(material.sourceFormat, 'pkcs12');
      });
    }

    const orders: Array<[string, (l: Issued) => string[]]> = [
      ['key, leaf, intermediate, root', (l) => [l.keyPem, l.certPem, get('inter').certPem, get('root').certPem]],
      ['intermediate, root, leaf, key', (l) => [get('inter').certPem, get('root').certPem, l.certPem, l.keyPem]],
      ['root, key, leaf, intermediate', (l) => [get('root').certPem, l.keyPem, l.certPem, get('inter').certPem]],
    ];
    for (const [label, parts] of orders) {
      it(`PEM with ${keyType.toUpperCase()} key in the order ${label} finds the leaf by its key`, () => {
        const leaf = get(keyType);
        const material = parseCertificateSecret(pemSecret(...parts(leaf)), PEM);
        assert.equal(material.leaf.fingerprint, leaf.cert.fingerprint);
        assert.deepEqual(
          material.chain.map((c) => c.subject),
          ['CN=inter', 'CN=root'],
        );
        assert.equal(material.sourceFormat, 'pem');
      });
    }

    it(`a traditional ${keyType === 'rsa' ? 'RSA' : 'EC'} PRIVATE KEY block is accepted`, () => {
      const leaf = get(keyType);
      const material = parseCertificateSecret(pemSecret(pki.traditionalKey(leaf, keyType), leaf.certPem), PEM);
      assert.equal(material.leaf.fingerprint, leaf.cert.fingerprint);
    });
  }

  it('certificates unrelated to the leaf come after its issuer chain, in uploaded order', () => {
    const other = pki.rootCa('other-root', { keyName: 'other' });
    const leaf = get('rsa');
    const material = parseCertificateSecret(pemSecret(other.certPem, get('inter').certPem, leaf.keyPem, leaf.certPem), PEM);
    assert.deepEqual(
      material.chain.map((c) => c.subject),
      ['CN=inter', 'CN=other-root'],
    );
  });

  it('a password-protected PFX is refused as such, legacy and modern', () => {
    for (const mode of ['legacy', 'modern'] as const) {
      rejectsWith('pkcs12-password', () => parseCertificateSecret(pki.pkcs12(get('rsa'), [], { mode, password: 'hunter2' }), PKCS12));
    }
  });

  it('a certificate without its key (non-exportable policy) is refused with the exportable-key fix', () => {
    for (const value of [pki.pkcs12(get('rsa'), [get('inter')], { mode: 'modern', noKey: true }), pemSecret(get('rsa').certPem)]) {
      assert.throws(
        () => parseCertificateSecret(value, undefined),
        (err: unknown) => err instanceof KvvmError && err.reason === 'no-private-key' && /exportable/.test(err.fix ?? ''),
      );
    }
  });

  describe('malformed inputs: always a KvvmError with a reason, never a crash', () => {
    const vectorP12 = () => loadSecretVectors().find((v) => v.file === 'secret-pkcs12-2022.json')?.value ?? '';
    const vectorPem = () => loadSecretVectors().find((v) => v.file === 'secret-pem-2020.json')?.value ?? '';
    const der = () => Buffer.from(vectorP12(), 'base64');
    const nested = (depth: number): Buffer => {
      let inner = Buffer.from([0x05, 0x00]);
      for (let i = 0; i < depth; i++) {
        const header = Buffer.from([0x30, 0x84, 0, 0, 0, 0]);
        header.writeUInt32BE(inner.length, 2);
        inner = Buffer.concat([header, inner]);
      }
      return inner;
    };
    const hugeIterations = (): string => {
      // Same PFX with its MAC iteration count rewritten to 2^31-1: must be refused, not computed for hours.
      const asn1 = forge.asn1.fromDer(forge.util.createBuffer(der().toString('binary')));
      const macData = (asn1.value as forge.asn1.Asn1[])[2] as forge.asn1.Asn1;
      (macData.value as forge.asn1.Asn1[])[2] = forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.INTEGER, false, forge.asn1.integerToDer(0x7fffffff).getBytes());
      return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
    };
    const otherKey = () => pki.leaf('stranger', undefined, { keyType: 'ec' }).keyPem;

    const catalogue: Array<[string, () => [string, string | undefined], string | string[]]> = [
      ['empty string', () => ['', PKCS12], 'empty-secret'],
      ['only whitespace', () => ['  \n\t', PEM], 'empty-secret'],
      ['text that is not base64', () => ['this is not a pfx!', PKCS12], 'malformed-pkcs12'],
      ['base64url alphabet instead of base64', () => [vectorP12().replace(/\+/g, '-').replace(/\//g, '_'), PKCS12], 'malformed-pkcs12'],
      ['base64 cut mid-quantum', () => [vectorP12().slice(0, -5), PKCS12], 'malformed-pkcs12'],
      ['base64 with a line break inside', () => [`${vectorP12().slice(0, 64)}\n${vectorP12().slice(64)}`, PKCS12], 'malformed-pkcs12'],
      ['DER truncated to half', () => [der().subarray(0, 1300).toString('base64'), PKCS12], 'malformed-pkcs12'],
      ['random bytes', () => [randomBytes(2048).toString('base64'), PKCS12], 'malformed-pkcs12'],
      ['a DER certificate where a PFX belongs', () => [loadCertDer(), PKCS12], 'malformed-pkcs12'],
      ['ASN.1 nested 10,000 deep', () => [nested(10_000).toString('base64'), PKCS12], 'malformed-pkcs12'],
      ['a PFX with a byte flipped inside the MAC-protected content', () => [flip(der(), 1200).toString('base64'), PKCS12], ['pkcs12-password', 'malformed-pkcs12']],
      ['a PFX asking for 2^31 MAC iterations', () => [hugeIterations(), PKCS12], 'malformed-pkcs12'],
      ['PEM with garbage inside the certificate block', () => [vectorPem().replace(/(BEGIN CERTIFICATE-----\n)/, '$1%%%garbage%%%\n'), PEM], 'malformed-pem'],
      ['PEM whose block has no END line', () => [vectorPem().replace(/-----END CERTIFICATE-----\n?$/, ''), PEM], 'malformed-pem'],
      ['PEM with mismatched BEGIN/END labels', () => [vectorPem().replace('END CERTIFICATE', 'END PRIVATE KEY'), PEM], 'malformed-pem'],
      ['PEM with a BEGIN inside a block', () => [vectorPem().replace(/(BEGIN CERTIFICATE-----\n)/, '$1-----BEGIN CERTIFICATE-----\n'), PEM], 'malformed-pem'],
      ['plain text declared as PEM', () => ['hello world', PEM], 'malformed-pem'],
      [
        'a CERTIFICATE block holding random DER',
        () => [pemSecret(`-----BEGIN CERTIFICATE-----\n${randomBytes(300).toString('base64')}\n-----END CERTIFICATE-----`), PEM],
        'malformed-pem',
      ],
      [
        'a PRIVATE KEY block holding random DER',
        () => [vectorPem().replace(/(BEGIN PRIVATE KEY-----\n)[A-Za-z0-9+/]{64}/, `$1${randomBytes(48).toString('base64')}`), PEM],
        'malformed-pem',
      ],
      ['an unexpected PEM block type', () => [`${vectorPem()}-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n`, PEM], 'malformed-pem'],
      ['a key that matches none of the certificates', () => [pemSecret(otherKey(), get('rsa').certPem, get('inter').certPem), PEM], 'key-mismatch'],
      ['an encrypted PKCS#8 key', () => [pemSecret(pki.encryptedKey(get('rsa')), get('rsa').certPem), PEM], 'encrypted-private-key'],
      ['a legacy Proc-Type encrypted RSA key', () => [pemSecret(pki.encryptedKey(get('rsa'), 'traditional-rsa'), get('rsa').certPem), PEM], 'encrypted-private-key'],
      ['a key without any certificate', () => [pemSecret(get('rsa').keyPem), PEM], 'no-certificate'],
      ['input above the size limit', () => ['A'.repeat(MAX_SECRET_CHARS + 4), PKCS12], 'secret-too-large'],
      ['a password secret (text/plain)', () => ['P@ssw0rd', 'text/plain'], 'not-a-certificate'],
      ['no content type and neither PEM nor base64', () => ['just a password', undefined], 'not-a-certificate'],
    ];
    for (const [label, input, reason] of catalogue) {
      it(`${label} → ${Array.isArray(reason) ? reason.join(' or ') : reason}`, { timeout: 60_000 }, () => {
        const [value, contentType] = input();
        rejectsWith(reason, () => parseCertificateSecret(value, contentType));
      });
    }

    function loadCertDer(): string {
      return get('rsa').cert.raw.toString('base64');
    }
  });
});

function flip(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] ?? 0) ^ 0xff;
  return copy;
}
