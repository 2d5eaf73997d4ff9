import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import type { CertificateMaterial } from '../handler/certs/material.js';
import { hasServerAuthEku, loadTrustedRoots, validateChain } from '../handler/certs/chain.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { createCa, toPemSecret } from '../handler/devvault/certFactory.js';
import { OpensslFactory, pemSecret, type Issued } from './helpers/openssl.js';
import { loadSecretVectors } from './helpers/vectors.js';

const PEM = 'application/x-pem-file';
const DAY = 86_400_000;

function reasonOf(result: ReturnType<typeof validateChain>): string {
  return result.ok ? 'ok' : result.reason;
}

describe('chain validation of the recorded Key Vault certificates', () => {
  const roots = loadTrustedRoots(process.env);
  for (const vector of loadSecretVectors()) {
    const material = parseCertificateSecret(vector.value, vector.contentType);
    // A pinned clock one minute into the certificate's validity (the vectors expired in 2021 and 2023).
    const inside = new Date(vector.notBefore.getTime() + 60_000);

    it(`${vector.file}: the leaf is marked for server authentication`, () => {
      assert.equal(hasServerAuthEku(material.leaf), true);
    });

    it(`${vector.file}: self-signed, so refused as an untrusted root with the system roots`, () => {
      const result = validateChain(material, { trustedRoots: roots, now: inside });
      assert.equal(reasonOf(result), 'chain-untrusted-root');
      assert.ok(!result.ok && result.fix.length > 0 && result.message.includes('CN=MyCert'));
    });

    it(`${vector.file}: accepted when its own certificate is a trusted root`, () => {
      assert.equal(reasonOf(validateChain(material, { trustedRoots: [...roots, material.leaf], now: inside })), 'ok');
    });

    it(`${vector.file}: refused as expired at today's clock even when trusted`, () => {
      assert.equal(reasonOf(validateChain(material, { trustedRoots: [material.leaf], now: new Date() })), 'chain-expired');
    });
  }
});

describe('chain validation of openssl-made chains', () => {
  let pki: OpensslFactory;
  let root: Issued;
  let inter: Issued;
  let leaf: Issued;
  const now = new Date();
  const material = (...parts: string[]): CertificateMaterial => parseCertificateSecret(pemSecret(...parts), PEM);

  before(async () => {
    pki = await OpensslFactory.create();
    root = pki.rootCa('root');
    inter = pki.intermediate('inter', root);
    leaf = pki.leaf('leaf', inter);
  });
  after(() => pki.cleanup());

  it('root → intermediate → leaf is accepted when the root is trusted', () => {
    assert.equal(reasonOf(validateChain(material(leaf.keyPem, leaf.certPem, inter.certPem), { trustedRoots: [root.cert], now })), 'ok');
    assert.equal(reasonOf(validateChain(material(root.certPem, leaf.keyPem, leaf.certPem, inter.certPem), { trustedRoots: [root.cert], now })), 'ok');
  });

  it('the same chain with its root in the secret but not trusted is refused as an untrusted root', () => {
    const result = validateChain(material(leaf.keyPem, leaf.certPem, inter.certPem, root.certPem), { trustedRoots: loadTrustedRoots(process.env), now });
    assert.equal(reasonOf(result), 'chain-untrusted-root');
  });

  it('a chain missing its intermediate is refused as incomplete', () => {
    assert.equal(reasonOf(validateChain(material(leaf.keyPem, leaf.certPem), { trustedRoots: [root.cert], now })), 'chain-incomplete');
  });

  it('a chain whose root is neither in the secret nor trusted is refused as incomplete', () => {
    assert.equal(reasonOf(validateChain(material(leaf.keyPem, leaf.certPem, inter.certPem), { trustedRoots: [], now })), 'chain-incomplete');
  });

  it('an expired intermediate is refused as expired', () => {
    const oldInter = pki.intermediate('old-inter', root, { keyName: 'inter', notBefore: new Date(now.getTime() - 60 * DAY), notAfter: new Date(now.getTime() - DAY) });
    const child = pki.leaf('child', oldInter, { keyName: 'leaf' });
    const result = validateChain(material(child.keyPem, child.certPem, oldInter.certPem), { trustedRoots: [root.cert], now });
    assert.equal(reasonOf(result), 'chain-expired');
    assert.ok(!result.ok && result.message.includes('old-inter'));
  });

  it('an expired trusted root is refused as expired', () => {
    const oldRoot = pki.rootCa('old-root', { keyName: 'root', notBefore: new Date(now.getTime() - 60 * DAY), notAfter: new Date(now.getTime() - DAY) });
    const child = pki.leaf('child-of-old-root', oldRoot, { keyName: 'leaf' });
    assert.equal(reasonOf(validateChain(material(child.keyPem, child.certPem), { trustedRoots: [oldRoot.cert], now })), 'chain-expired');
  });

  it('a leaf that is not yet valid is refused as not yet valid', () => {
    const future = pki.leaf('future', inter, { keyName: 'leaf', notBefore: new Date(now.getTime() + DAY), notAfter: new Date(now.getTime() + 30 * DAY) });
    assert.equal(reasonOf(validateChain(material(future.keyPem, future.certPem, inter.certPem), { trustedRoots: [root.cert], now })), 'chain-not-yet-valid');
  });

  it('a leaf whose signature was tampered with is refused on the signature', () => {
    const der = Buffer.from(leaf.cert.raw);
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01; // last byte of the signature value
    const tampered = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    assert.equal(reasonOf(validateChain(material(leaf.keyPem, tampered, inter.certPem), { trustedRoots: [root.cert], now })), 'chain-signature');
  });

  it('an EC leaf under the RSA chain is accepted', () => {
    const ec = pki.leaf('leaf-ec', inter, { keyType: 'ec' });
    assert.equal(reasonOf(validateChain(material(ec.keyPem, ec.certPem, inter.certPem), { trustedRoots: [root.cert], now })), 'ok');
  });

  it('serverAuth is detected from the EKU; clientAuth-only leaves and CAs without EKU are not server-auth', () => {
    assert.equal(hasServerAuthEku(leaf.cert), true);
    assert.equal(hasServerAuthEku(pki.leaf('client', inter, { keyName: 'leaf', serverAuth: false }).cert), false);
    assert.equal(hasServerAuthEku(root.cert), false);
  });

  it('loadTrustedRoots adds the NODE_EXTRA_CA_CERTS file to the bundled roots, each root once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvvm-roots-'));
    try {
      const file = join(dir, 'extra.pem');
      await writeFile(file, pemSecret(root.certPem, root.certPem));
      const roots = loadTrustedRoots({ NODE_EXTRA_CA_CERTS: file });
      assert.ok(roots.length > 100, 'the bundled Mozilla roots are there');
      assert.equal(roots.filter((r) => r.raw.equals(root.cert.raw)).length, 1);
      assert.equal(new Set(roots.map((r) => r.fingerprint256)).size, roots.length);
      assert.equal(
        loadTrustedRoots({}).some((r) => r.raw.equals(root.cert.raw)),
        false,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an unreadable NODE_EXTRA_CA_CERTS file is reported as a warning and the other roots still load', () => {
    const warnings: string[] = [];
    const roots = loadTrustedRoots({ NODE_EXTRA_CA_CERTS: '/nonexistent/kvvm-extra.pem' }, { onWarning: (m) => warnings.push(m) });
    assert.ok(roots.length > 100);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /kvvm-extra\.pem.*ENOENT/);
  });
});

describe('chain validation finds the issuing root among all trusted roots by its name, as OpenSSL compares names', () => {
  const now = new Date();
  const root = createCa('Kvvm Name Test Root');
  // One array for every check, as the service passes it: the roots are indexed once.
  const roots = [...loadTrustedRoots({}), root.cert];

  /** A server-auth leaf signed by `root`'s key whose issuer field is written as `issuerCn`. */
  function leafWithIssuer(issuerCn: string): CertificateMaterial {
    const keys = forge.pki.rsa.generateKeyPair(1024);
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.publicKey;
    cert.serialNumber = '0a';
    cert.validity.notBefore = new Date(now.getTime() - DAY);
    cert.validity.notAfter = new Date(now.getTime() + DAY);
    cert.setSubject([{ name: 'commonName', value: 'leaf' }]);
    cert.setIssuer([{ name: 'commonName', value: issuerCn }]);
    cert.setExtensions([{ name: 'extKeyUsage', serverAuth: true }]);
    cert.sign(forge.pki.privateKeyFromPem(root.keyPem), forge.md.sha256.create());
    return parseCertificateSecret(toPemSecret(forge.pki.privateKeyToPem(keys.privateKey), [forge.pki.certificateToPem(cert)]), PEM);
  }

  it("the issuer written exactly as the root's subject", () => {
    assert.equal(reasonOf(validateChain(leafWithIssuer('Kvvm Name Test Root'), { trustedRoots: roots, now })), 'ok');
  });

  it('the issuer in other letter case and spacing (OpenSSL ignores both)', () => {
    assert.equal(reasonOf(validateChain(leafWithIssuer('  KVVM name   test ROOT '), { trustedRoots: roots, now })), 'ok');
  });

  it('the issuer with a tab for a space, which Node prints escaped: found by the scan of every root', () => {
    assert.equal(reasonOf(validateChain(leafWithIssuer('Kvvm\tName Test Root'), { trustedRoots: roots, now })), 'ok');
  });

  it("another name is not the root's, and the chain is incomplete", () => {
    assert.equal(reasonOf(validateChain(leafWithIssuer('Kvvm Name Test Root 2'), { trustedRoots: roots, now })), 'chain-incomplete');
  });
});
