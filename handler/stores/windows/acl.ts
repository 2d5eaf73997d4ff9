/**
 * Private-key ACL: Administrators and SYSTEM full control, each configured account read.
 * Everything that decides WHAT is set is pure (accountSid, buildKeySddl, keyAclCall) so tests assert the exact
 * arguments; Wine accepts the calls but enforces nothing, so only real Windows shows the effect (docs/windows.md).
 */
import { KvvmError } from '../../errors.js';
import { DACL_SECURITY_INFORMATION, NCRYPT_SECURITY_DESCR_PROPERTY, PP_KEYSET_SEC_DESCR } from '../../platform/win32/native.js';

const SID_LOCAL_SYSTEM = 'S-1-5-18';
const SID_LOCAL_SERVICE = 'S-1-5-19';
const SID_NETWORK_SERVICE = 'S-1-5-20';
const SID_BUILTIN_ADMINISTRATORS = 'S-1-5-32-544';

/**
 * Well-known accounts by their English names (Windows localizes the names, never the SIDs, so these resolve the
 * same on a German or Japanese server). Keys are lower case, without spaces and the "NT AUTHORITY\" / "BUILTIN\" prefix.
 */
const WELL_KNOWN: Record<string, string> = {
  networkservice: SID_NETWORK_SERVICE,
  localservice: SID_LOCAL_SERVICE,
  system: SID_LOCAL_SYSTEM,
  localsystem: SID_LOCAL_SYSTEM,
  administrators: SID_BUILTIN_ADMINISTRATORS,
};

const SID_STRING = /^S-1-\d+(-\d+)+$/i;

/** The SID of an account written as a SID string or a well-known name; undefined when it needs LookupAccountNameW. */
export function wellKnownSid(account: string): string | undefined {
  const trimmed = account.trim();
  if (SID_STRING.test(trimmed)) return trimmed.toUpperCase();
  const key = trimmed
    .toLowerCase()
    .replace(/^(nt authority|builtin)\\/, '')
    .replace(/[\s_]/g, '');
  return WELL_KNOWN[key];
}

/**
 * The DACL as SDDL: protected (no inheritance), GENERIC_ALL for SYSTEM and Administrators, GENERIC_READ for each
 * account. SIDs are de-duplicated and a reader already granted full control is not added again.
 */
export function buildKeySddl(readerSids: readonly string[]): string {
  for (const sid of readerSids) {
    if (!SID_STRING.test(sid)) throw new Error(`kvvm: not a SID string: ${sid}`);
  }
  const full = [SID_LOCAL_SYSTEM, SID_BUILTIN_ADMINISTRATORS];
  const readers = [...new Set(readerSids.map((s) => s.toUpperCase()))].filter((s) => !full.includes(s));
  return `D:P(A;;GA;;;SY)(A;;GA;;;BA)${readers.map((s) => `(A;;GR;;;${s})`).join('')}`;
}

export type KeyAclCall = { api: 'NCryptSetProperty'; property: string; flags: number } | { api: 'CryptSetProvParam'; param: number; flags: number };

/** How the descriptor is applied, from the key kind CryptAcquireCertificatePrivateKey reported. */
export function keyAclCall(keyKind: 'cng' | 'capi'): KeyAclCall {
  return keyKind === 'cng'
    ? { api: 'NCryptSetProperty', property: NCRYPT_SECURITY_DESCR_PROPERTY, flags: DACL_SECURITY_INFORMATION }
    : { api: 'CryptSetProvParam', param: PP_KEYSET_SEC_DESCR, flags: DACL_SECURITY_INFORMATION };
}

/** Resolves every account to a SID: well-known names and SID strings here, others through `lookup`. */
export function resolveAccountSids(accounts: readonly string[], lookup: (name: string) => string | undefined): string[] {
  return accounts.map((account) => {
    const sid = wellKnownSid(account) ?? lookup(account.trim());
    if (sid === undefined) {
      throw new KvvmError('windows-account-unknown', `The account "${account}" in "accounts" does not exist on this machine.`, {
        fix: 'Correct the account name (DOMAIN\\user, a local user or group, or a SID string such as S-1-5-20) in the settings.',
      });
    }
    return sid;
  });
}
