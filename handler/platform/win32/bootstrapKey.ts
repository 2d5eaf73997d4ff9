/**
 * The PaaS variant's bootstrap certificate (Cloud Services (extended support): the platform installs it in
 * LocalMachine\My from the service definition): found by subject, and used to SIGN with the key crypt32 holds, so
 * the key never leaves the store and need not be exportable.
 *
 *   find:  CertOpenStore(SYSTEM_W, LocalMachine|OPEN_EXISTING|READONLY, "My") + CertFindCertificateInStore(
 *          X509|PKCS7, 0, CERT_FIND_SUBJECT_STR_W, L"<subject>") in a loop; Windows matches a case-insensitive
 *          substring of the subject's RDN values. Of the matches, the newest (notBefore) one that is valid now and
 *          has a private key is used (chooseBootstrapCertificate, pure).
 *   sign:  CryptAcquireCertificatePrivateKey(SILENT | PREFER_NCRYPT): on Windows CNG keys AND legacy CAPI keys come
 *          back as NCRYPT handles -> NCryptSignHash(BCRYPT_PKCS1_PADDING_INFO{L"SHA256"}, SHA-256 digest,
 *          BCRYPT_PAD_PKCS1 | NCRYPT_SILENT_FLAG). A CAPI handle (Wine) -> CryptCreateHash(CALG_SHA_256) +
 *          CryptSetHashParam(HP_HASHVAL) + CryptSignHashW (the named key spec, then the other slot); CAPI returns the signature little-endian, so it is
 *          reversed. A CAPI provider without SHA-256 (PROV_RSA_FULL answers NTE_BAD_ALGID) is retried on the same
 *          container through the "Microsoft Enhanced RSA and AES Cryptographic Provider".
 * Every argument is built by a pure function below, tested in test/windows/pure/paas.test.ts.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { KvvmError } from '../../errors.js';
import { ENCODING, findBySha1, getProperty, thumbprintOfContext, encodedOf, withSystemStore, systemStoreFlags, freeContext, keyOf, type StoreLocation } from './certStore.js';
import { win32Error } from './errors.js';
import {
  AT_KEYEXCHANGE,
  AT_SIGNATURE,
  BCRYPT_PAD_PKCS1,
  BCRYPT_SHA256_ALGORITHM,
  CALG_SHA_256,
  CERT_FIND_SUBJECT_STR_W,
  CERT_KEY_PROV_INFO_PROP_ID,
  CERT_NCRYPT_KEY_SPEC,
  CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG,
  CRYPT_ACQUIRE_SILENT_FLAG,
  CRYPT_MACHINE_KEYSET,
  CRYPT_SILENT,
  HP_HASHVAL,
  MS_ENH_RSA_AES_PROV,
  NCRYPT_SILENT_FLAG,
  NTE_BAD_ALGID,
  NTE_NO_KEY,
  PROV_RSA_AES,
  hresultOf,
  loadNative,
  type Handle,
  type Native,
} from './native.js';

/** Where Cloud Services puts the bootstrap certificate (ServiceDefinition.csdef storeLocation/storeName). */
const BOOTSTRAP_LOCATION: StoreLocation = 'LocalMachine';
const BOOTSTRAP_STORE = 'My';

export interface SubjectFindArgs {
  storeName: string;
  openFlags: number;
  encoding: number;
  findFlags: number;
  findType: number;
  subject: string;
}

/** CertOpenStore + CertFindCertificateInStore arguments for a lookup by subject (read-only, existing store). */
export function subjectFindArgs(subject: string, location: StoreLocation = BOOTSTRAP_LOCATION, storeName = BOOTSTRAP_STORE): SubjectFindArgs {
  return { storeName, openFlags: systemStoreFlags(location, 'read'), encoding: ENCODING, findFlags: 0, findType: CERT_FIND_SUBJECT_STR_W, subject };
}

/** CryptAcquireCertificatePrivateKey flags for signing: no UI, an NCRYPT handle whenever Windows can give one. */
export const SIGN_ACQUIRE_FLAGS = (CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG) >>> 0;

/** NCryptSignHash arguments for RS256 over `data`. */
export function ncryptSignArgs(data: Buffer): { padding: { pszAlgId: string }; hash: Buffer; flags: number } {
  return { padding: { pszAlgId: BCRYPT_SHA256_ALGORITHM }, hash: createHash('sha256').update(data).digest(), flags: (BCRYPT_PAD_PKCS1 | NCRYPT_SILENT_FLAG) >>> 0 };
}

/** CAPI arguments for RS256 over `data`: CryptCreateHash(alg), CryptSetHashParam(param, hash). */
export function capiSignArgs(data: Buffer): { alg: number; param: number; hash: Buffer } {
  return { alg: CALG_SHA_256, param: HP_HASHVAL, hash: createHash('sha256').update(data).digest() };
}

/** The same container, reopened with a provider that has SHA-256 (CryptAcquireContextW arguments). */
export function capiAesProviderArgs(container: string, keyProvFlags: number): { container: string; provider: string; provType: number; flags: number } {
  return { container, provider: MS_ENH_RSA_AES_PROV, provType: PROV_RSA_AES, flags: ((keyProvFlags & CRYPT_MACHINE_KEYSET) | CRYPT_SILENT) >>> 0 };
}

/**
 * The key specs CryptSignHash tries: the one CryptAcquireCertificatePrivateKey named, then the other slot. A PFX
 * key is normally AT_KEYEXCHANGE; Wine 8 answers dwKeySpec 3 (measured), which names neither, so both are tried.
 */
export function capiKeySpecsToTry(spec: number): number[] {
  if (spec === AT_KEYEXCHANGE) return [AT_KEYEXCHANGE, AT_SIGNATURE];
  if (spec === AT_SIGNATURE) return [AT_SIGNATURE, AT_KEYEXCHANGE];
  return [AT_KEYEXCHANGE, AT_SIGNATURE];
}

/** CryptSignHash writes the signature least significant byte first; JWS wants it big-endian. */
export function capiSignatureToBigEndian(signature: Buffer): Buffer {
  return Buffer.from(signature).reverse();
}

export interface BootstrapCandidate {
  thumbprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  hasPrivateKey: boolean;
}

/** The newest (latest notBefore, then latest notAfter) candidate valid at `now` with a private key. */
export function chooseBootstrapCertificate(candidates: readonly BootstrapCandidate[], now: Date): BootstrapCandidate | undefined {
  const usable = candidates.filter((c) => c.hasPrivateKey && c.notBefore.getTime() <= now.getTime() && now.getTime() < c.notAfter.getTime());
  return usable.sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime() || b.notAfter.getTime() - a.notAfter.getTime())[0];
}

export interface BootstrapCertificate {
  thumbprint: string;
  subject: string;
  der: Buffer;
  /** RSASSA-PKCS1-v1_5 SHA-256 signature of `data`, big-endian, made by crypt32/ncrypt with the store's key. */
  sign(data: Buffer): Buffer;
}

export interface FindBootstrapOptions {
  location?: StoreLocation;
  storeName?: string;
  now?: Date;
  native?: () => Native;
}

/** Every certificate whose subject matches (Windows' CERT_FIND_SUBJECT_STR_W semantics), with what the choice needs. */
function findSubjectCandidates(n: Native, args: SubjectFindArgs, location: StoreLocation): Array<BootstrapCandidate & { der: Buffer }> {
  return withSystemStore(n, location, args.storeName, 'read', (store) => {
    const found: Array<BootstrapCandidate & { der: Buffer }> = [];
    if (store === undefined) return found;
    let ctx: Handle | null = null;
    try {
      for (;;) {
        ctx = n.CertFindCertificateInStoreString(store, args.encoding, args.findFlags, args.findType, args.subject, ctx) as Handle | null; // frees the previous one
        if (!ctx) break;
        const der = encodedOf(n, ctx);
        const x509 = new X509Certificate(der);
        found.push({
          thumbprint: thumbprintOfContext(n, ctx),
          subject: x509.subject,
          der,
          notBefore: new Date(x509.validFrom),
          notAfter: new Date(x509.validTo),
          hasPrivateKey: getProperty(n, ctx, CERT_KEY_PROV_INFO_PROP_ID) !== undefined,
        });
      }
    } finally {
      freeContext(n, ctx);
    }
    return found;
  });
}

/** The bootstrap certificate to authenticate with, or a KvvmError telling the operator what is missing. */
export function findBootstrapCertificate(subject: string, options: FindBootstrapOptions = {}): BootstrapCertificate {
  const native = options.native ?? loadNative;
  const location = options.location ?? BOOTSTRAP_LOCATION;
  const storeName = options.storeName ?? BOOTSTRAP_STORE;
  const now = options.now ?? new Date();
  const n = native();
  const candidates = findSubjectCandidates(n, subjectFindArgs(subject, location, storeName), location);
  const chosen = chooseBootstrapCertificate(candidates, now);
  if (!chosen) {
    const seen = candidates.map(
      (c) => `${c.thumbprint} (${c.subject.replace(/\n/g, ', ')}; ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}${c.hasPrivateKey ? '' : '; no private key'})`,
    );
    throw new KvvmError(
      'paas-certificate-not-found',
      `No certificate in ${location}\\${storeName} whose subject contains "${subject}" is valid now and has a private key` +
        (seen.length > 0 ? `; found: ${seen.join('; ')}.` : '.'),
      {
        fix: `Add the bootstrap certificate to the Cloud Service (osProfile.secrets and <Certificate name=... storeLocation="${location}" storeName="${storeName}"/> in ServiceDefinition.csdef) and set authenticationSettings.clientCertificateSubjectName to its subject without "CN=".`,
      },
    );
  }
  const { der } = candidates.find((c) => c.thumbprint === chosen.thumbprint) as { der: Buffer };
  return {
    thumbprint: chosen.thumbprint,
    subject: chosen.subject,
    der,
    sign: (data) => signWithStoreKey(n, location, storeName, chosen.thumbprint, data),
  };
}

/** Opens the store again for each signature (one every ~10 min): no handle is held between token requests. */
function signWithStoreKey(n: Native, location: StoreLocation, storeName: string, thumbprint: string, data: Buffer): Buffer {
  return withSystemStore(n, location, storeName, 'read', (store) => {
    const ctx = store === undefined ? undefined : findBySha1(n, store, thumbprint);
    if (ctx === undefined) {
      throw new KvvmError('paas-certificate-not-found', `The bootstrap certificate ${thumbprint} is no longer in ${location}\\${storeName}.`, {
        fix: 'kvvm looks the certificate up again on the next poll; check that the Cloud Service still deploys it.',
      });
    }
    try {
      return signWithContext(n, ctx, data);
    } finally {
      freeContext(n, ctx);
    }
  });
}

function signWithContext(n: Native, ctx: Handle, data: Buffer): Buffer {
  const key = [0n];
  const spec = [0];
  const callerFree = [0];
  if (!n.CryptAcquireCertificatePrivateKey(ctx, SIGN_ACQUIRE_FLAGS, null, key, spec, callerFree)) {
    throw win32Error('CryptAcquireCertificatePrivateKey', n.GetLastError(), 'open the private key of the bootstrap certificate');
  }
  const cng = spec[0] === CERT_NCRYPT_KEY_SPEC;
  try {
    return cng ? ncryptSign(n, key[0] as bigint, data) : capiSign(n, ctx, key[0] as bigint, spec[0] ?? 0, data);
  } finally {
    if (callerFree[0]) {
      if (cng) n.NCryptFreeObject(key[0]);
      else n.CryptReleaseContext(key[0], 0);
    }
  }
}

function ncryptSign(n: Native, key: bigint, data: Buffer): Buffer {
  const { padding, hash, flags } = ncryptSignArgs(data);
  const size = [0];
  let status = n.NCryptSignHash(key, padding, hash, hash.length, null, 0, size, flags) as number;
  if (status !== 0) throw win32Error('NCryptSignHash', status, 'size the bootstrap certificate signature');
  const signature = Buffer.alloc(size[0] ?? 0);
  status = n.NCryptSignHash(key, padding, hash, hash.length, signature, signature.length, size, flags) as number;
  if (status !== 0) throw win32Error('NCryptSignHash', status, 'sign the client assertion with the bootstrap certificate');
  return signature.subarray(0, size[0] ?? 0);
}

function capiSign(n: Native, ctx: Handle, prov: bigint, keySpec: number, data: Buffer): Buffer {
  const { alg, param, hash } = capiSignArgs(data);
  const h = [0n];
  if (n.CryptCreateHash(prov, alg, 0, 0, h)) return capiSignHash(n, h[0] as bigint, param, hash, keySpec);
  const err = n.GetLastError();
  if (hresultOf(err) !== NTE_BAD_ALGID) throw win32Error('CryptCreateHash', err, 'hash the client assertion (SHA-256)');
  // PROV_RSA_FULL has no SHA-256: the same container through the RSA+AES provider.
  const info = keyOf(n, ctx);
  if (!info) throw win32Error('CryptCreateHash', err, 'hash the client assertion (SHA-256)');
  const aes = capiAesProviderArgs(info.container, info.info.dwFlags);
  const prov2 = [0n];
  if (!n.CryptAcquireContextW(prov2, aes.container, aes.provider, aes.provType, aes.flags)) {
    throw win32Error('CryptAcquireContextW', n.GetLastError(), `open the key container ${info.container} with ${aes.provider}`);
  }
  try {
    if (!n.CryptCreateHash(prov2[0], alg, 0, 0, h)) throw win32Error('CryptCreateHash', n.GetLastError(), 'hash the client assertion (SHA-256)');
    return capiSignHash(n, h[0] as bigint, param, hash, keySpec);
  } finally {
    n.CryptReleaseContext(prov2[0], 0);
  }
}

function capiSignHash(n: Native, h: bigint, param: number, hash: Buffer, keySpec: number): Buffer {
  try {
    if (!n.CryptSetHashParam(h, param, hash, 0)) throw win32Error('CryptSetHashParam', n.GetLastError(), 'set the client assertion hash');
    const specs = capiKeySpecsToTry(keySpec);
    for (const [i, spec] of specs.entries()) {
      const size = [0];
      if (!n.CryptSignHashW(h, spec, null, 0, null, size)) {
        const err = n.GetLastError();
        if (hresultOf(err) === NTE_NO_KEY && i < specs.length - 1) continue; // the key is in the other slot
        throw win32Error('CryptSignHashW', err, 'size the bootstrap certificate signature');
      }
      const signature = Buffer.alloc(size[0] ?? 0);
      if (!n.CryptSignHashW(h, spec, null, 0, signature, size)) throw win32Error('CryptSignHashW', n.GetLastError(), 'sign the client assertion with the bootstrap certificate');
      return capiSignatureToBigEndian(signature.subarray(0, size[0] ?? 0));
    }
    throw win32Error('CryptSignHashW', NTE_NO_KEY, 'find the bootstrap certificate key');
  } finally {
    n.CryptDestroyHash(h);
  }
}
