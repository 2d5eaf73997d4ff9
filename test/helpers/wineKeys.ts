/**
 * Certificates whose RSA key Wine 8's crypt32 can import correctly. Its PFXImportCertStore (crypt32's unix import_key,
 * through gnutls) copies p, q, dP, dQ and the CRT coefficient at exactly bits/16 bytes and d at bits/8; a component
 * with a leading zero byte (each about 1 in 256 keys) is not imported, and Wine (one key container per user) then
 * signs with the container's previous key. Measured here: of keys whose coefficient was one byte short, 2 of 3
 * signed wrongly; 12 keys with full-length components all signed correctly. Real Windows imports every key; this
 * is only for tests that USE a freshly made key under Wine (a CI run failed on it: bootstrapKey.test).
 */
import { createPrivateKey } from 'node:crypto';
import { issueCertificate, type IssueCertificateOptions, type IssuedCertificate } from '../../handler/devvault/certFactory.js';

const FULL_BYTES: Record<string, number> = { d: 8, p: 16, q: 16, dp: 16, dq: 16, qi: 16 };

/** The RSA private key components (JWK names) shorter than Wine's import copies, for a key of `bits` bits. */
export function shortRsaComponents(keyPem: string, bits: number): string[] {
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' }) as Record<string, string | undefined>;
  return Object.entries(FULL_BYTES)
    .filter(([name, div]) => Buffer.from(jwk[name] ?? '', 'base64url').length < bits / div)
    .map(([name]) => name);
}

/** issueCertificate, drawing a new key until every component has full length (about 1 key in 40 is redrawn). */
export function issueWineImportableCertificate(options: IssueCertificateOptions): IssuedCertificate {
  const bits = options.keyBits ?? 2048;
  for (let attempt = 0; attempt < 100; attempt++) {
    const issued = issueCertificate(options);
    if (shortRsaComponents(issued.keyPem, bits).length === 0) return issued;
  }
  throw new Error('no RSA key with full-length components in 100 draws');
}
