/**
 * Bounded work per secret (issue 13 item 3): whatever a PFX declares, the reader refuses it before deriving keys
 * once the declared work (summed over the MAC and every bag) passes MAX_PFX_WORK, and refuses more bags,
 * certificates or keys than a certificate with its chain has.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KvvmError } from '../handler/errors.js';
import { KEY_VAULT_PFX_WORK, MAX_CONTENT_INFOS, MAX_KDF_ITERATIONS, MAX_PFX_WORK, MAX_SAFE_BAGS } from '../handler/certs/pkcs12.js';
import { MAX_CERTIFICATES, parseCertificateSecret } from '../handler/certs/parse.js';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { pfxWithEncryptedSafes, pfxWithShroudedKeys, withMacIterations } from './helpers/hostilePfx.js';

const PKCS12 = 'application/x-pkcs12';

function refusal(value: string, contentType: string): KvvmError {
  try {
    parseCertificateSecret(value, contentType);
  } catch (err) {
    if (err instanceof KvvmError) return err;
    throw err;
  }
  assert.fail('the secret was accepted');
}

describe('work one PFX can ask for is bounded', () => {
  it('the limit is a wide margin over what Key Vault PFX need, and below what a hostile file asks', () => {
    assert.ok(MAX_PFX_WORK >= 100 * KEY_VAULT_PFX_WORK);
    assert.ok(MAX_PFX_WORK < 200 * MAX_KDF_ITERATIONS, 'the 200-bag attack of issue 13 is over the limit');
  });

  it('a PFX asking for 10^8 MAC iterations is refused naming the per-derivation limit', () => {
    const ca = createCa('bounds root');
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'bounds.test' });
    const der = withMacIterations(Buffer.from(toPkcs12Base64(leaf.keyPem, [leaf.certPem]), 'base64'), 100_000_000);
    const err = refusal(der.toString('base64'), PKCS12);
    assert.equal(err.reason, 'malformed-pkcs12');
    assert.match(err.message, /more than 1000000 key-derivation iterations/);
  });

  it('a 25 KB PFX of 200 encrypted safes at 1,000,000 iterations is refused by its structure', () => {
    const der = pfxWithEncryptedSafes(200, 1_000_000);
    assert.ok(der.length <= 25_000, `${der.length} bytes: fits a Key Vault secret`);
    const err = refusal(der.toString('base64'), PKCS12);
    assert.equal(err.reason, 'malformed-pkcs12');
    assert.match(err.message, new RegExp(`above the ${MAX_CONTENT_INFOS} limit`));
  });

  it('a PFX of 200 shrouded key bags at 1,000,000 iterations is refused by its bag count', () => {
    const der = pfxWithShroudedKeys(200, 1_000_000);
    assert.ok(der.length <= 25_000, `${der.length} bytes`);
    const err = refusal(der.toString('base64'), PKCS12);
    assert.equal(err.reason, 'malformed-pkcs12');
    assert.match(err.message, new RegExp(`more than ${MAX_SAFE_BAGS} bags`));
  });

  it('encrypted safes within the count limit but over the work limit are refused with the total they ask for', () => {
    const der = pfxWithEncryptedSafes(MAX_CONTENT_INFOS, MAX_KDF_ITERATIONS);
    const err = refusal(der.toString('base64'), PKCS12);
    assert.equal(err.reason, 'malformed-pkcs12');
    // 16 safes x (2 SHA-1 blocks for the 3DES key, 1 for its IV) x 1,000,000 + the MAC's 2,000
    assert.match(err.message, /asks for 48002000 hash computations of key derivation, above kvvm's limit of 2000000/);
  });

  it('shrouded keys within the bag limit but over the work limit are refused before any key is decrypted', () => {
    const der = pfxWithShroudedKeys(60, 20_000);
    const err = refusal(der.toString('base64'), PKCS12);
    assert.equal(err.reason, 'malformed-pkcs12');
    assert.match(err.message, /asks for 3602000 hash computations/);
  });

  it('a PEM secret with more certificates than a chain has is refused', () => {
    const ca = createCa('bounds pem root');
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'bounds-pem.test', keyBits: 1024 });
    const many = Array.from({ length: MAX_CERTIFICATES + 1 }, () => ca.certPem);
    const err = refusal(toPemSecret(leaf.keyPem, [leaf.certPem, ...many]), 'application/x-pem-file');
    assert.equal(err.reason, 'malformed-pem');
  });
});
