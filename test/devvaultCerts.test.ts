/**
 * The certificate factory's output, checked with the real openssl CLI (the same tool the vectors README used on
 * Key Vault's own PFX files) and with node:crypto.
 */
import { execFile } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { createCa, issueCertificate, splitPemBlocks, toPemSecret, toPkcs12Base64, type IssuedCertificate } from '../handler/devvault/certFactory.js';

const run = promisify(execFile);

async function openssl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('openssl', args, { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('certificate factory', () => {
  let dir: string;
  let ca: IssuedCertificate;
  let leaf: IssuedCertificate;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kvvm-certs-test-'));
    ca = createCa('kvvm test root');
    leaf = issueCertificate({ issuer: ca, subjectCn: 'app.example.test', dnsNames: ['app.example.test', '10.0.0.4'], days: 90 });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('issues a CA and a server certificate it signed, with DNS and IP names', () => {
    assert.ok(ca.cert.ca);
    assert.ok(!leaf.cert.ca);
    assert.ok(leaf.cert.checkIssued(ca.cert));
    assert.ok(leaf.cert.verify(ca.cert.publicKey));
    assert.equal(leaf.cert.checkHost('app.example.test'), 'app.example.test');
    assert.equal(leaf.cert.checkIP('10.0.0.4'), '10.0.0.4');
    assert.deepEqual(leaf.cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(createPublicKey(leaf.keyPem).export({ type: 'spki', format: 'pem' }), leaf.cert.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  test('the PKCS#12 is Key Vault shaped and openssl reads it with an empty -passin', async () => {
    const p12 = join(dir, 'kv.p12');
    writeFileSync(p12, Buffer.from(toPkcs12Base64(leaf.keyPem, [leaf.certPem, ca.certPem]), 'base64'));
    const info = await openssl(['pkcs12', '-info', '-in', p12, '-passin', 'pass:', '-nodes']);
    assert.equal(info.code, 0, info.stderr);
    const all = info.stdout + info.stderr;
    assert.match(all, /MAC: sha1, Iteration 2000/);
    assert.match(all, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000/);
    assert.match(all, /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000/);
    assert.match(all, /Microsoft CSP Name: Microsoft Enhanced RSA and AES Cryptographic Provider/);
    assert.match(all, /friendlyName: [0-9a-f-]{36}/);
    assert.match(all, /localKeyID: 01 00 00 00/);

    // The key in the file is the leaf's key, and the leaf chains to the CA in the same file.
    const blocks = splitPemBlocks(info.stdout);
    const key = blocks.find((b) => b.type === 'PRIVATE KEY');
    const certs = blocks.filter((b) => b.type === 'CERTIFICATE').map((b) => new X509Certificate(b.pem));
    assert.ok(key);
    assert.equal(certs.length, 2);
    assert.ok(certs.some((c) => c.fingerprint256 === leaf.cert.fingerprint256));
    assert.ok(certs.some((c) => c.fingerprint256 === ca.cert.fingerprint256));
    assert.equal(createPublicKey(key.pem).export({ type: 'spki', format: 'pem' }), leaf.cert.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  test('the PKCS#12 MAC fails with a non-empty password', async () => {
    const p12 = join(dir, 'wrong.p12');
    writeFileSync(p12, Buffer.from(toPkcs12Base64(leaf.keyPem, [leaf.certPem]), 'base64'));
    const res = await openssl(['pkcs12', '-info', '-in', p12, '-passin', 'pass:secret', '-nokeys']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /Mac verify error/);
  });

  test('node-forge opens the PKCS#12 with the NULL password, as consumers of Key Vault PFX must', () => {
    const der = Buffer.from(toPkcs12Base64(leaf.keyPem, [leaf.certPem]), 'base64').toString('binary');
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), true, null as unknown as string);
    const keyBags = p12.getBags({ bagType: forge.pki.oids['pkcs8ShroudedKeyBag'] })[forge.pki.oids['pkcs8ShroudedKeyBag'] as string] ?? [];
    assert.equal(keyBags.length, 1);
    assert.ok(keyBags[0]?.key);
    // The empty string is a different password in PKCS#12 and must not verify.
    assert.throws(() => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), true, ''));
  });

  test('a certificate-only PKCS#12 (non-exportable key) has no key bag', async () => {
    const p12 = join(dir, 'nokey.p12');
    writeFileSync(p12, Buffer.from(toPkcs12Base64(undefined, [leaf.certPem]), 'base64'));
    const res = await openssl(['pkcs12', '-info', '-in', p12, '-passin', 'pass:', '-nodes']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, /PRIVATE KEY/);
    assert.match(res.stdout, /BEGIN CERTIFICATE/);
  });

  test('the PEM secret is the PKCS#8 key, then the certificates, LF-terminated', async () => {
    const pem = toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]);
    assert.deepEqual(
      splitPemBlocks(pem).map((b) => b.type),
      ['PRIVATE KEY', 'CERTIFICATE', 'CERTIFICATE'],
    );
    assert.ok(pem.endsWith('-----\n'));
    assert.ok(!pem.includes('\r'));
    const file = join(dir, 'secret.pem');
    writeFileSync(file, pem);
    const check = await openssl(['pkey', '-in', file, '-noout', '-check']);
    assert.equal(check.code, 0, check.stderr);
  });
});
