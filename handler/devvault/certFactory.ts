/**
 * Pure-Node certificate factory for the dev vault's TLS certificate, the demo and tests.
 *
 * Keys come from node:crypto (fast, native); node-forge builds and signs the X.509 certificates because
 * node:crypto cannot create certificates. RSA only: forge cannot sign with EC keys (tests that need EC use the
 * openssl CLI instead).
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { buildPasswordlessPkcs12 } from './pkcs12.js';

export interface IssuedCertificate {
  certPem: string;
  /** Unencrypted PKCS#8 ("PRIVATE KEY") PEM. */
  keyPem: string;
  /** Parsed form, handy for fingerprints and validity. */
  cert: X509Certificate;
}

export interface IssueCertificateOptions {
  /** Signing CA; omit for a self-signed certificate. */
  issuer?: IssuedCertificate;
  subjectCn: string;
  /** Subject alternative names; IP literals become iPAddress entries, everything else dNSName. */
  dnsNames?: string[];
  /** Adds EKU serverAuth + clientAuth (what Key Vault's default policy issues). Default true for leaves. */
  serverAuth?: boolean;
  /** Validity in days from `notBefore`. Default 365. */
  days?: number;
  /** Default: now minus one minute (tolerates small clock skew between processes). */
  notBefore?: Date;
  isCa?: boolean;
  /** RSA modulus length; default 2048. */
  keyBits?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function generateRsaKey(bits: number): { keyPem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** 16 random bytes with the top bit cleared so the DER INTEGER stays positive (RFC 5280 4.1.2.2). */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Creates a certificate (self-signed when no issuer is given). */
export function issueCertificate(options: IssueCertificateOptions): IssuedCertificate {
  const { keyPem, publicPem } = generateRsaKey(options.keyBits ?? 2048);
  const isCa = options.isCa ?? false;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = randomSerialHex();
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + (options.days ?? 365) * DAY_MS);
  const subject = [{ name: 'commonName', value: options.subjectCn }];
  cert.setSubject(subject);

  const issuerForge = options.issuer ? forge.pki.certificateFromPem(options.issuer.certPem) : undefined;
  cert.setIssuer(issuerForge ? issuerForge.subject.attributes : subject);

  const extensions: object[] = [
    { name: 'basicConstraints', cA: isCa, critical: true },
    isCa
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (!isCa && (options.serverAuth ?? true)) {
    extensions.push({ name: 'extKeyUsage', serverAuth: true, clientAuth: true });
  }
  if (issuerForge) {
    // Lets chain builders (OpenSSL, Windows) pick the right issuer when several CAs share a name.
    extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuerForge.generateSubjectKeyIdentifier().getBytes() });
  }
  const names = options.dnsNames ?? [];
  if (names.length > 0) {
    extensions.push({
      name: 'subjectAltName',
      altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  }
  cert.setExtensions(extensions);

  const signingKeyPem = options.issuer ? options.issuer.keyPem : keyPem;
  cert.sign(forge.pki.privateKeyFromPem(signingKeyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
  return { certPem, keyPem, cert: new X509Certificate(certPem) };
}

/** A self-signed root CA valid for ten years. */
export function createCa(name: string, days = 3650): IssuedCertificate {
  return issueCertificate({ subjectCn: name, isCa: true, days, serverAuth: false });
}

/**
 * Base64 PKCS#12 shaped like Key Vault's (password-less, 3DES bags, SHA-1 MAC under the NULL password).
 * `certPems` is the leaf first, then the chain.
 */
export function toPkcs12Base64(keyPem: string | undefined, certPems: string[]): string {
  return buildPasswordlessPkcs12(keyPem, certPems).toString('base64');
}

/** Key Vault's PEM secret format: unencrypted PKCS#8 key first, then the certificates, LF line ends. */
export function toPemSecret(keyPem: string | undefined, certPems: string[]): string {
  const parts = [...(keyPem === undefined ? [] : [keyPem]), ...certPems].map((p) => p.replace(/\r\n/g, '\n').trim());
  return `${parts.join('\n')}\n`;
}

/** Splits concatenated PEM text into its blocks (any type), in order. */
export function splitPemBlocks(text: string): { type: string; pem: string }[] {
  const out: { type: string; pem: string }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ type: m[1] ?? '', pem: `${m[0]}\n` });
  }
  return out;
}
