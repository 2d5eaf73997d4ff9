/**
 * Thin, typed wrappers over the crypt32 store calls. Each failure becomes a KvvmError naming the call and its
 * HRESULT; "not found" comes back as undefined. Callers own the contexts they get and free them (`using`-style
 * helpers below make that the default).
 */
import type { X509Certificate } from 'node:crypto';
import { nodeCrypto } from '../../lazyCrypto.js';
import { win32Error } from './errors.js';
import {
  CERT_FIND_SHA1_HASH,
  CERT_KEY_PROV_INFO_PROP_ID,
  CERT_SHA1_HASH_PROP_ID,
  CERT_STORE_CTRL_COMMIT,
  CERT_STORE_CTRL_COMMIT_FORCE_FLAG,
  CERT_STORE_OPEN_EXISTING_FLAG,
  CERT_STORE_PROV_SYSTEM_W,
  CERT_STORE_READONLY_FLAG,
  CERT_SYSTEM_STORE_CURRENT_USER,
  CERT_SYSTEM_STORE_LOCAL_MACHINE,
  CRYPT_E_NOT_FOUND,
  ERROR_FILE_NOT_FOUND,
  X509_ASN_ENCODING,
  PKCS_7_ASN_ENCODING,
  hresultOf,
  type Handle,
  type Native,
} from './native.js';

/** A system store location, spelled as the settings spell it (certificateStoreLocation on Windows). */
export type StoreLocation = 'LocalMachine' | 'CurrentUser';

/** Validates the settings value (case-sensitive, as the extension's schema has it). */
export function storeLocationOf(value: string): StoreLocation | undefined {
  return value === 'LocalMachine' || value === 'CurrentUser' ? value : undefined;
}

export const ENCODING = (X509_ASN_ENCODING | PKCS_7_ASN_ENCODING) >>> 0;

export function systemStoreFlags(location: StoreLocation, mode: 'read' | 'write'): number {
  const where = location === 'LocalMachine' ? CERT_SYSTEM_STORE_LOCAL_MACHINE : CERT_SYSTEM_STORE_CURRENT_USER;
  return (mode === 'read' ? where | CERT_STORE_OPEN_EXISTING_FLAG | CERT_STORE_READONLY_FLAG : where) >>> 0;
}

/** Opens `location\name`; for reading, a store that does not exist gives undefined (nothing installed there). */
export function openSystemStore(n: Native, location: StoreLocation, name: string, mode: 'read' | 'write'): Handle | undefined {
  const h = n.CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, null, systemStoreFlags(location, mode), name) as Handle | null;
  if (h) return h;
  const err = n.GetLastError();
  if (mode === 'read' && (hresultOf(err) === hresultOf(ERROR_FILE_NOT_FOUND) || hresultOf(err) === CRYPT_E_NOT_FOUND)) return undefined;
  throw win32Error('CertOpenStore', err, `open the certificate store ${location}\\${name}`);
}

/**
 * Runs fn on an open store, then commits (when writing, whether fn succeeded or not) and closes it. A failed commit
 * is reported only when fn succeeded; otherwise fn's error is the one that matters.
 */
export function withSystemStore<T>(n: Native, location: StoreLocation, name: string, mode: 'read' | 'write', fn: (store: Handle | undefined) => T): T {
  const store = openSystemStore(n, location, name, mode);
  let ok = false;
  try {
    const result = fn(store);
    ok = true;
    return result;
  } finally {
    if (store !== undefined) {
      // Committed after a failure too: a rollback (deleting what fn added) must reach the registry as well.
      const committed = mode === 'read' || n.CertControlStore(store, CERT_STORE_CTRL_COMMIT_FORCE_FLAG, CERT_STORE_CTRL_COMMIT, null) !== 0;
      const err = committed ? 0 : n.GetLastError();
      n.CertCloseStore(store, 0);
      // eslint-disable-next-line no-unsafe-finally -- only when fn succeeded: a failed commit is then the error to report
      if (!committed && ok) throw win32Error('CertControlStore', err, `commit the certificate store ${location}\\${name}`);
    }
  }
}

export function freeContext(n: Native, ctx: Handle | null | undefined): void {
  if (ctx) n.CertFreeCertificateContext(ctx);
}

/** Property bytes, or undefined when the certificate does not have it. */
export function getProperty(n: Native, ctx: Handle, propId: number): Buffer | undefined {
  const size = [0];
  if (!n.CertGetCertificateContextProperty(ctx, propId, null, size)) {
    const err = n.GetLastError();
    if (hresultOf(err) === CRYPT_E_NOT_FOUND) return undefined;
    throw win32Error('CertGetCertificateContextProperty', err, `read certificate property ${propId}`);
  }
  const buf = Buffer.alloc(size[0] ?? 0);
  if (!n.CertGetCertificateContextProperty(ctx, propId, buf, size)) {
    throw win32Error('CertGetCertificateContextProperty', n.GetLastError(), `read certificate property ${propId}`);
  }
  return buf.subarray(0, size[0] ?? 0);
}

/** Sets a blob property; undefined deletes it. */
export function setProperty(n: Native, ctx: Handle, propId: number, value: Buffer | undefined): void {
  const ok =
    value === undefined
      ? n.CertDeleteCertificateContextProperty(ctx, propId, 0, null)
      : n.CertSetCertificateContextProperty(ctx, propId, 0, { cbData: value.length, pbData: value });
  if (!ok) throw win32Error('CertSetCertificateContextProperty', n.GetLastError(), `set certificate property ${propId}`);
}

export function utf16z(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf16le');
}

function fromUtf16z(buf: Buffer | undefined): string | undefined {
  if (buf === undefined) return undefined;
  const text = buf.toString('utf16le');
  const end = text.indexOf('\0');
  return end < 0 ? text : text.slice(0, end);
}

export function getStringProperty(n: Native, ctx: Handle, propId: number): string | undefined {
  return fromUtf16z(getProperty(n, ctx, propId));
}

export function thumbprintOfContext(n: Native, ctx: Handle): string {
  const sha1 = getProperty(n, ctx, CERT_SHA1_HASH_PROP_ID);
  if (!sha1) throw win32Error('CertGetCertificateContextProperty', CRYPT_E_NOT_FOUND, 'read a certificate thumbprint');
  return sha1.toString('hex').toUpperCase();
}

/** The DER of a context (copied out of crypt32's memory). */
export function encodedOf(n: Native, ctx: Handle): Buffer {
  const c = n.koffi.decode(ctx, n.types.CERT_CONTEXT) as { pbCertEncoded: bigint; cbCertEncoded: number };
  return Buffer.from(new Uint8Array(n.koffi.view(c.pbCertEncoded, c.cbCertEncoded)));
}

export function certificateOf(n: Native, ctx: Handle): X509Certificate {
  return new (nodeCrypto().X509Certificate)(encodedOf(n, ctx));
}

/** The certificate with this SHA-1 (hex), or undefined. The caller frees the context. */
export function findBySha1(n: Native, store: Handle, thumbprint: string): Handle | undefined {
  const hash = Buffer.from(thumbprint, 'hex');
  const ctx = n.CertFindCertificateInStore(store, ENCODING, 0, CERT_FIND_SHA1_HASH, { cbData: hash.length, pbData: hash }, null) as Handle | null;
  if (ctx) return ctx;
  const err = n.GetLastError();
  if (hresultOf(err) === CRYPT_E_NOT_FOUND || err === 0) return undefined;
  throw win32Error('CertFindCertificateInStore', err, `look up certificate ${thumbprint}`);
}

/** Calls fn for every certificate in the store; the context is only valid during the call. */
export function forEachCertificate(n: Native, store: Handle, fn: (ctx: Handle) => void): void {
  let ctx: Handle | null = null;
  try {
    for (;;) {
      ctx = n.CertEnumCertificatesInStore(store, ctx) as Handle | null; // frees the previous context
      if (!ctx) break;
      fn(ctx);
    }
  } finally {
    freeContext(n, ctx); // only when fn threw mid-way
  }
}

/** Deletes the certificate the context points at (the call frees the context, even on failure). */
export function deleteCertificate(n: Native, ctx: Handle, what: string): void {
  if (!n.CertDeleteCertificateFromStore(ctx)) throw win32Error('CertDeleteCertificateFromStore', n.GetLastError(), `remove ${what}`);
}

/** The key container (and provider) a certificate's CERT_KEY_PROV_INFO_PROP_ID names, if it has a key. */
export function keyOf(n: Native, ctx: Handle): { container: string; provider: string | null; info: KeyProvInfo } | undefined {
  const raw = getProperty(n, ctx, CERT_KEY_PROV_INFO_PROP_ID);
  if (!raw) return undefined;
  const info = n.koffi.decode(raw, n.types.CRYPT_KEY_PROV_INFO) as KeyProvInfo;
  const str = (p: bigint | null): string | null => (p ? (n.koffi.decode(p, 'char16_t', -1) as string) : null);
  const container = str(info.pwszContainerName);
  return container === null ? undefined : { container, provider: str(info.pwszProvName), info };
}

interface KeyProvInfo {
  pwszContainerName: bigint | null;
  pwszProvName: bigint | null;
  dwProvType: number;
  dwFlags: number;
  dwKeySpec: number;
}
