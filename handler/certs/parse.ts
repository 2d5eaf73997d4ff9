import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { KvvmError } from '../errors.js';
import type { CertificateMaterial } from './material.js';
import { decodeStrictBase64, derToPem, splitPemBlocks, type PemBlock } from './pemText.js';
import { readPkcs12 } from './pkcs12.js';
import { pkcs8PrivateKey } from './privateKey.js';

/** Largest secret value accepted. Key Vault caps secrets at 25 KB; 1 MiB leaves room and bounds parsing cost. */
export const MAX_SECRET_CHARS = 1024 * 1024;

/**
 * Most certificates and private keys one secret may hold. Key Vault secrets hold one key and a chain of a few
 * certificates; matching keys to certificates and ordering the chain are quadratic, so both counts are bounded.
 */
export const MAX_CERTIFICATES = 32;
const MAX_PRIVATE_KEYS = 4;

export const CONTENT_TYPE_PKCS12 = 'application/x-pkcs12';
export const CONTENT_TYPE_PEM = 'application/x-pem-file';

const NO_KEY_FIX =
  "Make the certificate's key exportable in its Key Vault certificate policy (keyProperties.exportable: true) and " +
  'create a new version: the secret only carries the private key of exportable certificates.';

/**
 * Parses the value of a certificate-backed secret into what a store installs.
 * Every failure is a KvvmError with a stable `reason`; nothing else escapes, whatever the input.
 */
export function parseCertificateSecret(value: string, contentType: string | undefined): CertificateMaterial {
  try {
    return parseUnchecked(value, contentType);
  } catch (err) {
    if (err instanceof KvvmError) throw err;
    // Defensive: a library threw something we did not anticipate (RangeError from deep recursion, ...).
    throw new KvvmError('malformed-certificate', 'The certificate secret could not be read.', {
      fix: 'Re-import the certificate into Key Vault.',
      cause: err,
    });
  }
}

function parseUnchecked(value: string, contentType: string | undefined): CertificateMaterial {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new KvvmError('empty-secret', 'The certificate secret is empty.', {
      fix: 'Check that the URL names a certificate (its secret), and that the certificate has a completed version.',
    });
  }
  if (value.length > MAX_SECRET_CHARS) {
    throw new KvvmError('secret-too-large', `The certificate secret is ${value.length} characters, above the ${MAX_SECRET_CHARS} limit.`, {
      fix: 'Check that the URL names a certificate; Key Vault certificates are a few kilobytes.',
    });
  }
  const format = formatOf(value, contentType);
  return format === 'pkcs12' ? fromPkcs12(value) : fromPem(value);
}

function formatOf(value: string, contentType: string | undefined): 'pkcs12' | 'pem' {
  if (contentType !== undefined && contentType.trim() !== '') {
    // Media types are case-insensitive and may carry parameters ("; charset=utf-8").
    const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
    if (type === CONTENT_TYPE_PKCS12) return 'pkcs12';
    if (type === CONTENT_TYPE_PEM) return 'pem';
    throw notACertificate(`its content type is "${contentType}"`);
  }
  // No content type: secrets set by hand. PEM is recognisable by its boundary; a PFX is base64 of a DER SEQUENCE.
  if (value.includes('-----BEGIN ')) return 'pem';
  const der = decodeStrictBase64(value);
  if (der !== undefined && der[0] === 0x30) return 'pkcs12';
  throw notACertificate('it has no content type and is neither PEM nor base64 PKCS#12');
}

function notACertificate(detail: string): KvvmError {
  return new KvvmError('not-a-certificate', `The secret is not a certificate: ${detail}.`, {
    fix: `Observe certificate-backed secrets only (content type ${CONTENT_TYPE_PKCS12} or ${CONTENT_TYPE_PEM}).`,
  });
}

function fromPkcs12(value: string): CertificateMaterial {
  const der = decodeStrictBase64(value);
  if (der === undefined) {
    throw new KvvmError('malformed-pkcs12', 'The certificate secret is not a readable PKCS#12 (PFX): it is not strict base64.', {
      fix: 'A PKCS#12 secret value must be the base64 of the PFX file without line breaks; re-import the certificate into Key Vault.',
    });
  }
  const { keys, keyProviders, certs } = readPkcs12(der);
  return assemble(keys, certs, 'pkcs12', keyProviders);
}

function fromPem(value: string): CertificateMaterial {
  const blocks = splitPemBlocks(value);
  if (blocks.length === 0) {
    throw new KvvmError('malformed-pem', 'The certificate secret is not valid PEM: it has no PEM block.', {
      fix: 'Upload the certificate again in Key Vault (PEM: an unencrypted PKCS#8 "PRIVATE KEY" block followed by the certificates).',
    });
  }
  if (blocks.length > MAX_CERTIFICATES + MAX_PRIVATE_KEYS + 1) {
    throw new KvvmError(
      'malformed-pem',
      `The certificate secret holds ${blocks.length} PEM blocks, more than a certificate with its chain can (limit ${MAX_CERTIFICATES + MAX_PRIVATE_KEYS + 1}).`,
      {
        fix: 'Upload the certificate again with its private key and only the certificates of its chain.',
      },
    );
  }
  const keys: KeyObject[] = [];
  const certs: X509Certificate[] = [];
  for (const block of blocks) {
    switch (block.label) {
      case 'CERTIFICATE':
        certs.push(certFromPem(block));
        break;
      case 'PRIVATE KEY':
      case 'RSA PRIVATE KEY':
      case 'EC PRIVATE KEY':
        keys.push(keyFromPem(block));
        break;
      case 'ENCRYPTED PRIVATE KEY':
        throw encryptedKey();
      case 'EC PARAMETERS':
        break; // `openssl ecparam -genkey` writes it before the key; it carries nothing the key lacks.
      default:
        throw new KvvmError('malformed-pem', `The certificate secret holds an unexpected "${block.label}" PEM block.`, {
          fix: 'Upload the certificate again with only a private key and CERTIFICATE blocks.',
        });
    }
  }
  return assemble(keys, certs, 'pem');
}

function certFromPem(block: PemBlock): X509Certificate {
  try {
    return new X509Certificate(block.der);
  } catch (cause) {
    throw new KvvmError('malformed-pem', 'A CERTIFICATE block in the secret is not a readable X.509 certificate.', {
      fix: 'Upload the certificate again in Key Vault.',
      cause,
    });
  }
}

function keyFromPem(block: PemBlock): KeyObject {
  if (block.headers.some((h) => /^Proc-Type:.*ENCRYPTED/i.test(h))) throw encryptedKey();
  const type = block.label === 'PRIVATE KEY' ? 'pkcs8' : block.label === 'RSA PRIVATE KEY' ? 'pkcs1' : 'sec1';
  try {
    return type === 'pkcs8' ? pkcs8PrivateKey(block.der) : createPrivateKey({ key: block.der, format: 'der', type });
  } catch (cause) {
    throw new KvvmError('malformed-pem', `The "${block.label}" block in the secret is not a readable private key.`, {
      fix: 'Upload the certificate again in Key Vault.',
      cause,
    });
  }
}

function encryptedKey(): KvvmError {
  return new KvvmError('encrypted-private-key', 'The private key in the PEM secret is encrypted with a password.', {
    fix: 'Key Vault PEM secrets carry an unencrypted PKCS#8 key: import the certificate into Key Vault as a certificate (with its password) instead of setting an encrypted PEM as a secret.',
  });
}

/** Leaf = the certificate whose public key is the private key's; the rest ordered issuer-first from the leaf up. */
function assemble(keys: KeyObject[], certs: X509Certificate[], sourceFormat: 'pkcs12' | 'pem', keyProviders: Array<string | undefined> = []): CertificateMaterial {
  if (certs.length === 0) {
    throw new KvvmError('no-certificate', 'The secret holds no certificate.', {
      fix: 'Check that the URL names a certificate and re-import it into Key Vault with its certificate.',
    });
  }
  if (keys.length === 0) {
    throw new KvvmError('no-private-key', 'The certificate secret holds no private key.', { fix: NO_KEY_FIX });
  }
  if (certs.length > MAX_CERTIFICATES || keys.length > MAX_PRIVATE_KEYS) {
    const reason = sourceFormat === 'pkcs12' ? 'malformed-pkcs12' : 'malformed-pem';
    throw new KvvmError(
      reason,
      `The certificate secret holds ${certs.length} certificates and ${keys.length} private keys; kvvm reads at most ${MAX_CERTIFICATES} and ${MAX_PRIVATE_KEYS}.`,
      {
        fix: 'Import the certificate into Key Vault again with its own private key and only the certificates of its chain.',
      },
    );
  }
  for (const [k, key] of keys.entries()) {
    const leafIndex = certs.findIndex((c) => holdsPublicKeyOf(c, key));
    if (leafIndex < 0) continue;
    const leaf = certs[leafIndex] as X509Certificate;
    const rest = certs.filter((_, i) => i !== leafIndex);
    const material: CertificateMaterial = { leaf, chain: orderChain(leaf, rest), privateKey: key, thumbprint: thumbprintOf(leaf), sourceFormat };
    const provider = keyProviders[k];
    if (provider !== undefined) material.keyProvider = provider;
    return material;
  }
  throw new KvvmError('key-mismatch', 'The private key in the secret matches none of its certificates.', {
    fix: 'Re-import the certificate into Key Vault together with its own private key.',
  });
}

/**
 * The certificate's public key is the private key's: OpenSSL's X509_check_private_key (what `openssl pkcs12` and
 * PKCS12_parse match keys to certificates with), one native comparison of the key values instead of exporting
 * both public keys as SPKI.
 */
function holdsPublicKeyOf(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false; // a key type the certificate's cannot be compared with: not its key
  }
}

/** Walks issuer links from the leaf; certificates not on that path keep their uploaded order at the end. */
function orderChain(leaf: X509Certificate, others: X509Certificate[]): X509Certificate[] {
  const remaining = [...others];
  const ordered: X509Certificate[] = [];
  let current = leaf;
  while (remaining.length > 0 && !isSelfIssued(current)) {
    const i = remaining.findIndex((c) => issuedBy(current, c));
    if (i < 0) break;
    current = remaining.splice(i, 1)[0] as X509Certificate;
    ordered.push(current);
  }
  return [...ordered, ...remaining];
}

function isSelfIssued(cert: X509Certificate): boolean {
  return issuedBy(cert, cert);
}

function issuedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false; // unsupported signature algorithm: not provably linked
  }
}

/** Uppercase hex SHA-1 of the DER, the Windows "thumbprint". */
export function thumbprintOf(cert: X509Certificate): string {
  return createHash('sha1').update(cert.raw).digest('hex').toUpperCase();
}

/** Parses Node's "Jun 25 12:55:19 2021 GMT" validity strings. */
export function notAfterOf(cert: X509Certificate): Date {
  return new Date(cert.validTo);
}

export function notBeforeOf(cert: X509Certificate): Date {
  return new Date(cert.validFrom);
}

/**
 * One PEM file: the leaf, then the chain (the leaf's issuer first, each certifying the one before, the root last
 * if present), and the PKCS#8 private key. `keyPosition` 'last' is the KeyVaultForLinux 3.x layout (RFC 5246
 * §7.4.2 order, then the key), which scripts that split the file by position rely on; 'first' is kvvm 4.x's.
 */
export function materialToPem(material: CertificateMaterial, options: { keyPosition?: 'first' | 'last' } = {}): string {
  const exported = material.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = exported.endsWith('\n') ? exported : `${exported}\n`;
  const certs = [material.leaf, ...material.chain].map((c) => derToPem(c.raw, 'CERTIFICATE'));
  return (options.keyPosition === 'last' ? [...certs, key] : [key, ...certs]).join('');
}

export interface CertificateDescription {
  subject: string;
  thumbprint: string;
  notAfter: string;
}

/** What logs and status may say about a certificate: never anything from the key. */
export function describeCertificate(cert: X509Certificate): CertificateDescription {
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    thumbprint: thumbprintOf(cert),
    notAfter: notAfterOf(cert).toISOString(),
  };
}
