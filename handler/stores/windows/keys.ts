/**
 * The private key behind an installed certificate: which API owns it (CNG or CAPI), its ACL, its deletion.
 * The arguments come from acl.ts (pure); this file only makes the calls and frees every handle.
 */
import { buildKeySddl, keyAclCall, resolveAccountSids } from './acl.js';
import { win32Error } from '../../platform/win32/errors.js';
import {
  CERT_NCRYPT_KEY_SPEC,
  CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
  CRYPT_ACQUIRE_SILENT_FLAG,
  CRYPT_DELETEKEYSET,
  CRYPT_MACHINE_KEYSET,
  NCRYPT_MACHINE_KEY_FLAG,
  NCRYPT_SILENT_FLAG,
  SDDL_REVISION_1,
  hresultOf,
  type Handle,
  type Native,
} from '../../platform/win32/native.js';
import { keyOf } from '../../platform/win32/certStore.js';

/** Looks an account name up with LookupAccountNameW; undefined when the account does not exist. */
function lookupAccountSid(n: Native, name: string): string | undefined {
  const sidSize = [0];
  const domainSize = [0];
  const use = [0];
  n.LookupAccountNameW(null, name, null, sidSize, null, domainSize, use);
  if ((sidSize[0] ?? 0) === 0) return undefined; // ERROR_NONE_MAPPED (1332) and friends: no such account
  const sid = Buffer.alloc(sidSize[0] ?? 0);
  const domain = Buffer.alloc(((domainSize[0] ?? 0) + 1) * 2);
  if (!n.LookupAccountNameW(null, name, sid, sidSize, domain, domainSize, use)) {
    throw win32Error('LookupAccountNameW', n.GetLastError(), `resolve the account "${name}"`);
  }
  const text: [bigint | null] = [null];
  if (!n.ConvertSidToStringSidW(sid, text) || text[0] === null) throw win32Error('ConvertSidToStringSidW', n.GetLastError(), `format the SID of "${name}"`);
  try {
    return n.koffi.decode(text[0], 'char16_t', -1) as string;
  } finally {
    n.LocalFree(text[0]);
  }
}

/**
 * The DACL for the keys of a certificate with these `accounts`, or undefined when none are configured: then the
 * key keeps the DACL Windows gives machine keys (SYSTEM and Administrators full control, plus the importing
 * account) or user keys (the user). Resolved before anything is imported, so an unknown account changes nothing.
 */
export function keySddlFor(n: Native, accounts: readonly string[]): string | undefined {
  return accounts.length === 0 ? undefined : buildKeySddl(resolveAccountSids(accounts, (name) => lookupAccountSid(n, name)));
}

/** Applies a DACL (from keySddlFor) to the private key of `ctx`. */
export function applyKeyAcl(n: Native, ctx: Handle, sddl: string): 'cng' | 'capi' {
  const key = [0n];
  const spec = [0];
  const callerFree = [0];
  if (!n.CryptAcquireCertificatePrivateKey(ctx, CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG, null, key, spec, callerFree)) {
    throw win32Error('CryptAcquireCertificatePrivateKey', n.GetLastError(), 'open the private key to set its access list');
  }
  const kind = spec[0] === CERT_NCRYPT_KEY_SPEC ? 'cng' : 'capi';
  const sd: [bigint | null] = [null];
  const sdSize = [0];
  try {
    if (!n.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, sd, sdSize) || sd[0] === null) {
      throw win32Error('ConvertStringSecurityDescriptorToSecurityDescriptorW', n.GetLastError(), `build the key access list ${sddl}`);
    }
    const call = keyAclCall(kind);
    if (call.api === 'NCryptSetProperty') {
      const status = n.NCryptSetProperty(key[0], call.property, sd[0], sdSize[0], call.flags) as number;
      if (status !== 0) throw win32Error('NCryptSetProperty', status, `set the private key access list ${sddl}`);
    } else if (!n.CryptSetProvParam(key[0], call.param, sd[0], call.flags)) {
      throw win32Error('CryptSetProvParam', n.GetLastError(), `set the private key access list ${sddl}`);
    }
  } finally {
    if (sd[0] !== null) n.LocalFree(sd[0]);
    if (callerFree[0]) {
      if (kind === 'cng') n.NCryptFreeObject(key[0]);
      else n.CryptReleaseContext(key[0], 0);
    }
  }
  return kind;
}

/**
 * Deletes the persisted key a certificate points at (CERT_KEY_PROV_INFO_PROP_ID), so removed versions leave no key
 * files behind in ProgramData\Microsoft\Crypto. A key that is already gone is not an error; a container another
 * certificate still names is kept (Windows gives each PFX import its own container, Wine reuses one per user).
 */
export function deletePersistedKey(n: Native, ctx: Handle, stillUsed: (container: string) => boolean): void {
  const key = keyOf(n, ctx);
  if (key === undefined || stillUsed(key.container)) return;
  const { info, container, provider } = key;
  if (info.dwProvType === 0) {
    const prov = [0n];
    let status = n.NCryptOpenStorageProvider(prov, provider, 0) as number;
    if (status !== 0) throw win32Error('NCryptOpenStorageProvider', status, `open the key provider ${provider ?? ''}`);
    try {
      const key = [0n];
      status = n.NCryptOpenKey(prov[0], key, container, info.dwKeySpec, (info.dwFlags & NCRYPT_MACHINE_KEY_FLAG) | NCRYPT_SILENT_FLAG) as number;
      if (status !== 0) {
        if (hresultOf(status) === 0x80090016 /* NTE_BAD_KEYSET */) return;
        throw win32Error('NCryptOpenKey', status, `open the key ${container}`);
      }
      status = n.NCryptDeleteKey(key[0], 0) as number; // frees the key handle
      if (status !== 0) throw win32Error('NCryptDeleteKey', status, `delete the key ${container}`);
    } finally {
      n.NCryptFreeObject(prov[0]);
    }
    return;
  }
  const prov = [0n];
  if (!n.CryptAcquireContextW(prov, container, provider, info.dwProvType, CRYPT_DELETEKEYSET | (info.dwFlags & CRYPT_MACHINE_KEYSET))) {
    const err = n.GetLastError();
    if (hresultOf(err) === 0x80090016) return;
    throw win32Error('CryptAcquireContextW', err, `delete the key container ${container}`);
  }
}
