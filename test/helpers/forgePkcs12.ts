/**
 * The PKCS#12 reader kvvm used before the node:crypto one (handler/certs/pkcs12.ts): node-forge end to end. Kept
 * for the tests only, as the reference the differential test compares the native reader with.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { KvvmError } from '../../handler/errors.js';

/**
 * PKCS#12 reading through node-forge, because Node's crypto has no PFX parser and OpenSSL 3 (under Node) cannot
 * read the RC2-40 certificate bags that older Key Vault PFX use. forge has its own RC2, 3DES and PBES2/AES code.
 */

/** Highest PBKDF / PKCS#12-KDF iteration count accepted. Real files use 1–600,000; a mutated one could ask for
 *  2^31 and keep forge's pure-JS KDF busy for hours, so anything above this is treated as malformed. */
export const MAX_KDF_ITERATIONS = 1_000_000;

export interface Pkcs12Contents {
  keys: KeyObject[];
  certs: X509Certificate[];
}

const PASSWORD_FIX =
  'Key Vault certificates are stored without a password. Import the certificate into Key Vault as a certificate ' +
  '(az keyvault certificate import --password ...) so Key Vault removes the password, instead of setting the PFX as a plain secret.';

/**
 * Reads a PFX that Key Vault produced: password-less. The MAC of Key Vault PFX verifies with a NULL (absent)
 * password, openssl-made "password-less" files with the empty string, so both are tried in that order.
 */
export function readPkcs12WithForge(der: Buffer): Pkcs12Contents {
  let asn1: forge.asn1.Asn1;
  try {
    asn1 = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')), { strict: true, maxDepth: 64 } as never);
  } catch (cause) {
    throw malformed('it is not DER-encoded ASN.1', cause);
  }
  let firstError: unknown;
  for (const password of [null, ''] as const) {
    try {
      // forge's typings say string; null is how its code spells "no password" (see KEYVAULT.md).
      const p12 = withIterationLimit(() => forge.pkcs12.pkcs12FromAsn1(asn1, false, password as unknown as string));
      return extract(p12);
    } catch (err) {
      if (err instanceof KvvmError) throw err;
      if (!isPasswordError(err)) throw classify(err);
      firstError ??= err;
    }
  }
  throw new KvvmError('pkcs12-password', 'The PKCS#12 (PFX) secret is protected by a password (its integrity check fails without one), or it is damaged.', {
    fix: PASSWORD_FIX,
    cause: firstError,
  });
}

function extract(p12: forge.pkcs12.Pkcs12Pfx): Pkcs12Contents {
  const keys: KeyObject[] = [];
  const certs: X509Certificate[] = [];
  for (const safe of p12.safeContents) {
    for (const bag of safe.safeBags) {
      if (bag.type === forge.pki.oids.certBag) {
        certs.push(certFromBag(bag));
      } else if (bag.type === forge.pki.oids.keyBag || bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) {
        keys.push(keyFromBag(bag));
      }
      // Other bag types (CRL, secret bags) carry nothing a store installs.
    }
  }
  return { keys, certs };
}

function certFromBag(bag: forge.pkcs12.Bag): X509Certificate {
  try {
    // forge parses RSA certificates into objects and leaves others (EC) as ASN.1; both re-serialise to the
    // original DER because forge keeps the signed TBSCertificate as read.
    const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
    if (!asn1) throw new Error('certificate bag without a certificate');
    return new X509Certificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'));
  } catch (cause) {
    throw malformed('a certificate bag does not hold a readable X.509 certificate', cause);
  }
}

function keyFromBag(bag: forge.pkcs12.Bag): KeyObject {
  try {
    if (bag.key) {
      // RSA: forge decoded it; re-wrap as PKCS#8 so Node gets the same structure for every key type.
      const rsa = forge.pki.privateKeyToAsn1(bag.key);
      const info = forge.pki.wrapRsaPrivateKey(rsa);
      return createPrivateKey({ key: Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'), format: 'der', type: 'pkcs8' });
    }
    if (!bag.asn1) throw new Error('key bag without a key');
    // EC and other types: forge hands back the decrypted PrivateKeyInfo untouched.
    return createPrivateKey({ key: Buffer.from(forge.asn1.toDer(bag.asn1).getBytes(), 'binary'), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw malformed('a key bag does not hold a readable private key', cause);
  }
}

function isPasswordError(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /Invalid password|wrong password|MAC could not be verified/i.test(text);
}

function classify(err: unknown): KvvmError {
  if (err instanceof IterationLimitError) {
    return malformed(`it asks for more than ${MAX_KDF_ITERATIONS} key-derivation iterations`, err);
  }
  const text = err instanceof Error ? err.message : String(err);
  if (/unsupported/i.test(text)) {
    return new KvvmError('pkcs12-unsupported', `The PKCS#12 (PFX) secret uses an algorithm kvvm cannot read (${text}).`, {
      fix: 'Re-import the certificate into Key Vault from a PFX made with AES-256/SHA-256 (openssl pkcs12 -export) or 3DES/SHA-1 (-legacy).',
      cause: err,
    });
  }
  return malformed('its structure cannot be read', err);
}

function malformed(detail: string, cause?: unknown): KvvmError {
  return new KvvmError('malformed-pkcs12', `The certificate secret is not a readable PKCS#12 (PFX): ${detail}.`, {
    fix: 'Check that the secret is a certificate-backed secret (contentType application/x-pkcs12) and re-import the certificate into Key Vault.',
    cause,
  });
}

class IterationLimitError extends Error {}

type Kdf = (...args: unknown[]) => unknown;

/**
 * Runs `fn` with forge's two key-derivation functions wrapped by an iteration-count check. forge reads the count
 * from the file just before deriving, deep inside nested encrypted structures, so checking at the KDF is the only
 * place that sees every count. The wrap is synchronous and restored in `finally`, so nothing else observes it.
 */
function withIterationLimit<T>(fn: () => T): T {
  const pkcs5 = forge.pkcs5 as unknown as { pbkdf2: Kdf };
  const pbe = (forge as unknown as { pbe: { generatePkcs12Key: Kdf } }).pbe;
  const p12 = forge.pkcs12 as unknown as { generateKey: Kdf };
  const saved = { pbkdf2: pkcs5.pbkdf2, pbeKey: pbe.generatePkcs12Key, p12Key: p12.generateKey };
  const guard = (kdf: Kdf, countIndex: number): Kdf =>
    function guarded(this: unknown, ...args: unknown[]) {
      const count = args[countIndex];
      if (typeof count !== 'number' || !(count <= MAX_KDF_ITERATIONS)) {
        throw new IterationLimitError(`key-derivation iteration count ${String(count)} is above the limit`);
      }
      return kdf.apply(this, args);
    };
  pkcs5.pbkdf2 = guard(saved.pbkdf2, 2); // pbkdf2(password, salt, count, dkLen, md)
  pbe.generatePkcs12Key = guard(saved.pbeKey, 3); // generatePkcs12Key(password, salt, id, iter, n, md)
  p12.generateKey = guard(saved.p12Key, 3);
  try {
    return fn();
  } finally {
    pkcs5.pbkdf2 = saved.pbkdf2;
    pbe.generatePkcs12Key = saved.pbeKey;
    p12.generateKey = saved.p12Key;
  }
}
