import { createHmac, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import { KvvmError } from '../errors.js';
import { DerError, childrenOf, explicit, octetString, octets, oid, readOne, sequenceOf, smallInteger, TAG, expectUniversal, type Tlv } from './der.js';
import { isPkcs12KdfHash, pkcs12Kdf, pkcs12KdfCost, pkcs12Password } from './pkcs12Kdf.js';
import { DecryptionFailedError, IterationLimitError, MAX_KDF_ITERATIONS, UnsupportedAlgorithmError, checkIterations, planDecryption, type PlannedDecryption } from './pkcs12Pbe.js';
import { pkcs8PrivateKey } from './privateKey.js';

/**
 * PKCS#12 (RFC 7292) reading on node:crypto: MAC check, bag decryption, keys through createPrivateKey and
 * certificates through X509Certificate. The work one file can ask for is bounded before any of it is done.
 */

export { MAX_KDF_ITERATIONS };

/**
 * Most hash computations (key derivations and the MAC key, summed over every bag and password attempt) one PFX
 * may cost. Key Vault's own PFX need 14,000 (MAC, key bag and certificate bag at 2,000 iterations each; a bag's
 * 3DES key and IV take three SHA-1 blocks); openssl's defaults about 10,000. 2,000,000 is ~140x that: any PFX made
 * with ordinary settings (up to about -iter 300000) passes, and the worst case is a few seconds of CPU.
 */
export const MAX_PFX_WORK = 2_000_000;
/** Most SafeBags (keys, certificates, others) in one PFX. Key Vault writes one key and the chain. */
export const MAX_SAFE_BAGS = 64;
/** Most ContentInfos in the AuthenticatedSafe and nesting of SafeContentsBags. Key Vault writes two. */
export const MAX_CONTENT_INFOS = 16;
const MAX_SAFE_NESTING = 4;

/** What Key Vault's own files cost (the MAX_PFX_WORK comment); tests and docs quote it. */
export const KEY_VAULT_PFX_WORK = 14_000;

export interface Pkcs12Contents {
  keys: KeyObject[];
  /** Per key (same index): the "Microsoft CSP Name" bag attribute, when the PFX names a provider. */
  keyProviders?: Array<string | undefined>;
  certs: X509Certificate[];
}

/**
 * The CSP name Windows writes into a key bag ("Microsoft Enhanced RSA and AES Cryptographic Provider" in Key
 * Vault's PFX). PFXImportCertStore without PKCS12_PREFER_CNG_KSP (the 3.x import) puts the key into that CAPI1
 * provider; the Windows store carries it into its own import PFX (stores/windows/pfx.ts).
 */
export const MS_CSP_NAME_OID = '1.3.6.1.4.1.311.17.1';
const BMP_STRING = 0x1e;

/** The CSP name among a bag's attributes (SET OF { OID, SET OF value }), or undefined; never throws for odd attributes. */
function cspNameOf(attributes: Tlv | undefined): string | undefined {
  if (attributes === undefined) return undefined;
  for (const attribute of childrenOf(attributes)) {
    const [idTlv, values] = childrenOf(attribute);
    if (idTlv === undefined || values === undefined || oid(idTlv, 'a bag attribute type') !== MS_CSP_NAME_OID) continue;
    const value = childrenOf(values)[0];
    if (value?.cls !== 0 || value.tag !== BMP_STRING || value.contents.length % 2 !== 0 || value.contents.length > 512) return undefined;
    const text = Buffer.from(value.contents).swap16().toString('utf16le').replace(/\0+$/, '');
    return text === '' ? undefined : text;
  }
  return undefined;
}

const PASSWORD_FIX =
  'Key Vault certificates are stored without a password. Import the certificate into Key Vault as a certificate ' +
  '(az keyvault certificate import --password ...) so Key Vault removes the password, instead of setting the PFX as a plain secret.';

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
} as const;

/** MAC digest OID → node:crypto hash name (the HMAC and the PKCS#12 KDF of its key use the same hash). */
const MAC_HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '1.2.840.113549.2.5': 'md5',
};

interface MacData {
  hash: string;
  digest: Buffer;
  salt: Buffer;
  iterations: number;
}

interface ParsedPfx {
  authSafe: Buffer;
  contentInfos: Tlv[];
  mac: MacData | undefined;
}

/** The MAC did not verify with this password. */
class MacMismatchError extends Error {}

/** Work accounting for one PFX: charged before the work is done, so a file over the limit costs nothing. */
class WorkBudget {
  private spent = 0;
  charge(cost: number): void {
    if (this.spent + cost > MAX_PFX_WORK) {
      throw malformed(
        `it asks for ${this.spent + cost} hash computations of key derivation, above kvvm's limit of ${MAX_PFX_WORK} ` + `(Key Vault's own PFX need about ${KEY_VAULT_PFX_WORK})`,
      );
    }
    this.spent += cost;
  }
}

/**
 * Reads a PFX that Key Vault produced: password-less. The MAC of Key Vault PFX verifies with a NULL (absent)
 * password, openssl-made "password-less" files with the empty string, so both are tried in that order. `password`
 * (the dev vault's certificate import, like Key Vault's) tries that one only.
 */
export function readPkcs12(der: Buffer, password?: string): Pkcs12Contents {
  const pfx = structure(() => parsePfx(der));
  const budget = new WorkBudget();
  let firstError: unknown;
  for (const candidate of password === undefined ? ([null, ''] as const) : [password]) {
    try {
      return readWithPassword(pfx, candidate, budget);
    } catch (err) {
      if (err instanceof KvvmError) throw err;
      if (!(err instanceof MacMismatchError || err instanceof DecryptionFailedError)) throw classify(err);
      firstError ??= err;
    }
  }
  throw new KvvmError('pkcs12-password', 'The PKCS#12 (PFX) secret is protected by a password (its integrity check fails without one), or it is damaged.', {
    fix: PASSWORD_FIX,
    cause: firstError,
  });
}

function parsePfx(der: Buffer): ParsedPfx {
  const [versionTlv, authSafeInfo, macTlv, ...extra] = sequenceOf(readOne(der), 'the PFX');
  if (extra.length > 0) throw new DerError('the PFX has unexpected trailing fields');
  const version = smallInteger(versionTlv, 'the PFX version');
  if (version !== 3) throw new DerError(`the PFX version is ${version}, not 3`);
  const [typeTlv, contentTlv] = sequenceOf(authSafeInfo, 'the authSafe ContentInfo');
  const type = oid(typeTlv, 'the authSafe content type');
  if (type !== OID.data) throw new DerError('the PFX is not in password integrity mode (its authSafe is not data)');
  const authSafe = octetString(explicit(contentTlv, 0, 'the authSafe content'), 'the authSafe content');
  const contentInfos = sequenceOf(readOne(authSafe), 'the AuthenticatedSafe');
  if (contentInfos.length > MAX_CONTENT_INFOS) throw new DerError(`the AuthenticatedSafe holds ${contentInfos.length} ContentInfos, above the ${MAX_CONTENT_INFOS} limit`);
  return { authSafe, contentInfos, mac: macTlv === undefined ? undefined : parseMac(macTlv) };
}

function parseMac(tlv: Tlv): MacData {
  const [digestInfo, saltTlv, iterTlv, ...extra] = sequenceOf(tlv, 'the MacData');
  if (extra.length > 0) throw new DerError('the MacData has unexpected trailing fields');
  const [algorithm, digestTlv] = sequenceOf(digestInfo, 'the MAC DigestInfo');
  const [algOid] = sequenceOf(algorithm, 'the MAC algorithm');
  const algId = oid(algOid, 'the MAC algorithm');
  const hash = MAC_HASHES[algId];
  if (hash === undefined || !isPkcs12KdfHash(hash)) throw new UnsupportedAlgorithmError(`unsupported MAC algorithm ${algId}`);
  const iterations = iterTlv === undefined ? 1 : checkIterations(smallInteger(iterTlv, 'the MAC iteration count'), 'the MAC');
  return { hash, digest: octetString(digestTlv, 'the MAC digest'), salt: octetString(saltTlv, 'the MAC salt'), iterations };
}

function readWithPassword(pfx: ParsedPfx, password: string | null, budget: WorkBudget): Pkcs12Contents {
  // Plan every ContentInfo first so the MAC and every visible decryption are charged before any derivation runs.
  const safes = pfx.contentInfos.map((info) => structure(() => planContentInfo(info)));
  budget.charge((pfx.mac ? macCost(pfx.mac) : 0) + safes.reduce((sum, s) => sum + (s.decryption?.cost ?? 0), 0));
  if (pfx.mac) verifyMac(pfx.mac, pfx.authSafe, password);
  const authentic = pfx.mac !== undefined;
  const out: Pkcs12Contents = { keys: [], keyProviders: [], certs: [] };
  const counter = { bags: 0 };
  for (const safe of safes) {
    const plain = safe.decryption ? safe.decryption.run(password, safe.ciphertext) : safe.ciphertext;
    readSafeContents(plain, password, budget, out, counter, authentic || safe.decryption === undefined, 0);
  }
  return out;
}

function macSize(mac: MacData): number {
  return createHmac(mac.hash, Buffer.alloc(0)).digest().length;
}

function macCost(mac: MacData): number {
  return pkcs12KdfCost(mac.hash, mac.iterations, macSize(mac));
}

function verifyMac(mac: MacData, authSafe: Buffer, password: string | null): void {
  const key = pkcs12Kdf(mac.hash, pkcs12Password(password), mac.salt, 3, mac.iterations, macSize(mac));
  const computed = createHmac(mac.hash, key).update(authSafe).digest();
  if (computed.length !== mac.digest.length || !timingSafeEqual(computed, mac.digest)) throw new MacMismatchError('PKCS#12 MAC could not be verified');
}

interface PlannedSafe {
  /** Plain SafeContents bytes, or the ciphertext when `decryption` is set. */
  ciphertext: Buffer;
  decryption: PlannedDecryption | undefined;
}

function planContentInfo(info: Tlv): PlannedSafe {
  const [typeTlv, contentTlv] = sequenceOf(info, 'a ContentInfo');
  const type = oid(typeTlv, 'a ContentInfo type');
  if (type === OID.data) return { ciphertext: octetString(explicit(contentTlv, 0, 'a data ContentInfo'), 'a data ContentInfo'), decryption: undefined };
  if (type !== OID.encryptedData) throw new UnsupportedAlgorithmError(`unsupported ContentInfo type ${type} (only password-encrypted PFX are read)`);
  const [, encryptedContentInfo] = sequenceOf(explicit(contentTlv, 0, 'an EncryptedData'), 'an EncryptedData');
  const [innerType, algorithm, encrypted] = sequenceOf(encryptedContentInfo, 'an EncryptedContentInfo');
  if (oid(innerType, 'the EncryptedContentInfo type') !== OID.data) throw new DerError('the EncryptedContentInfo does not hold data');
  // encryptedContent is [0] IMPLICIT OCTET STRING: primitive, or constructed from OCTET STRING chunks (BER).
  if (encrypted === undefined || encrypted.cls !== 2 || encrypted.tag !== 0) throw new DerError('an EncryptedContentInfo has no encrypted content');
  return { ciphertext: octets(encrypted, 'the encrypted content'), decryption: planDecryption(algorithm) };
}

function readSafeContents(bytes: Buffer, password: string | null, budget: WorkBudget, out: Pkcs12Contents, counter: { bags: number }, authentic: boolean, nesting: number): void {
  // Decrypted bytes that do not parse are what a wrong password gives when no MAC vouched for the file.
  const bags = decrypted(authentic, () => sequenceOf(readOne(bytes), 'a SafeContents'));
  counter.bags += bags.length;
  if (counter.bags > MAX_SAFE_BAGS) throw malformed(`it holds more than ${MAX_SAFE_BAGS} bags`);
  const planned = bags.map((bag) => decrypted(authentic, () => planBag(bag)));
  budget.charge(planned.reduce((sum, p) => sum + (p.kind === 'shrouded' ? p.decryption.cost : 0), 0));
  for (const p of planned) {
    switch (p.kind) {
      case 'cert':
        out.certs.push(certificate(p.der));
        break;
      case 'key':
        out.keys.push(privateKey(p.der));
        out.keyProviders?.push(p.csp);
        break;
      case 'shrouded':
        out.keys.push(privateKey(p.decryption.run(password, p.ciphertext)));
        out.keyProviders?.push(p.csp);
        break;
      case 'nested':
        if (nesting >= MAX_SAFE_NESTING) throw malformed(`its SafeContents are nested more than ${MAX_SAFE_NESTING} deep`);
        readSafeContents(p.der, password, budget, out, counter, authentic, nesting + 1);
        break;
      case 'other':
        break; // CRL, secret and non-X.509 certificate bags carry nothing a store installs
    }
  }
}

type PlannedBag =
  | { kind: 'cert' | 'nested'; der: Buffer }
  | { kind: 'key'; der: Buffer; csp: string | undefined }
  | { kind: 'shrouded'; decryption: PlannedDecryption; ciphertext: Buffer; csp: string | undefined }
  | { kind: 'other' };

function planBag(bag: Tlv): PlannedBag {
  const [idTlv, valueTlv, attributes] = sequenceOf(bag, 'a SafeBag');
  if (attributes !== undefined) expectUniversal(attributes, TAG.SET, 'the bag attributes');
  const id = oid(idTlv, 'a SafeBag type');
  const value = explicit(valueTlv, 0, 'a SafeBag value');
  switch (id) {
    case OID.keyBag:
      return { kind: 'key', der: expectUniversal(value, TAG.SEQUENCE, 'a key bag').raw, csp: cspNameOf(attributes) };
    case OID.shroudedKeyBag: {
      const [algorithm, encrypted] = sequenceOf(value, 'an EncryptedPrivateKeyInfo');
      return { kind: 'shrouded', decryption: planDecryption(algorithm), ciphertext: octetString(encrypted, 'an encrypted private key'), csp: cspNameOf(attributes) };
    }
    case OID.certBag: {
      const [certType, certValue] = sequenceOf(value, 'a CertBag');
      if (oid(certType, 'a certificate type') !== OID.x509Certificate) return { kind: 'other' };
      return { kind: 'cert', der: octetString(explicit(certValue, 0, 'a certificate value'), 'a certificate value') };
    }
    case OID.safeContentsBag:
      return { kind: 'nested', der: expectUniversal(value, TAG.SEQUENCE, 'a nested SafeContents').raw };
    default:
      childrenOf(value); // still well-formed ASN.1
      return { kind: 'other' };
  }
}

function certificate(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (cause) {
    throw malformed('a certificate bag does not hold a readable X.509 certificate', cause);
  }
}

function privateKey(der: Buffer): KeyObject {
  try {
    return pkcs8PrivateKey(der);
  } catch (cause) {
    throw malformed('a key bag does not hold a readable private key', cause);
  }
}

function decrypted<T>(authentic: boolean, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof DerError && !authentic) throw new DecryptionFailedError('decrypted content is not ASN.1', { cause: err });
    throw err;
  }
}

function structure<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw classify(err);
  }
}

function classify(err: unknown): KvvmError {
  if (err instanceof KvvmError) return err;
  if (err instanceof IterationLimitError) return malformed(`it asks for more than ${MAX_KDF_ITERATIONS} key-derivation iterations`, err);
  if (err instanceof UnsupportedAlgorithmError) {
    return new KvvmError('pkcs12-unsupported', `The PKCS#12 (PFX) secret uses an algorithm kvvm cannot read (${err.message}).`, {
      fix: 'Re-import the certificate into Key Vault from a PFX made with AES-256/SHA-256 (openssl pkcs12 -export) or 3DES/SHA-1 (-legacy).',
      cause: err,
    });
  }
  if (err instanceof DerError) return malformed(`its structure cannot be read (${err.message})`, err);
  return malformed('its structure cannot be read', err);
}

function malformed(detail: string, cause?: unknown): KvvmError {
  return new KvvmError('malformed-pkcs12', `The certificate secret is not a readable PKCS#12 (PFX): ${detail}.`, {
    fix: 'Check that the secret is a certificate-backed secret (contentType application/x-pkcs12) and re-import the certificate into Key Vault.',
    cause,
  });
}
