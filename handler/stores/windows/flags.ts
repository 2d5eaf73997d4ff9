/**
 * The flags kvvm passes to PFXImportCertStore, as a pure function so tests assert them without Windows.
 *
 * CNG (PKCS12_PREFER_CNG_KSP) is what kvvm wants on Windows: keys land in the Microsoft Software Key Storage
 * Provider, whose ACL is set with NCryptSetProperty. Whether the platform can do it is PROBED once per process
 * (windowsStore.ts: a non-persisting import of the PFX at hand with the CNG flag), never guessed from the OS name;
 * Wine 8 returns NULL for every *CNG* flag, so there the probe answers "CAPI" and the same code path imports with
 * the legacy provider. See docs/windows.md.
 *
 * The 3.x profile (keyStorage 'pfx-default') passes neither CNG flag nor KeyGuard: PFXImportCertStore then picks
 * the provider from the PFX itself — CAPI1 when the key bag's CSP Name attribute names a CAPI1 provider (Key
 * Vault's PFX name "Microsoft Enhanced RSA and AES Cryptographic Provider"), CNG otherwise (the 3.0 FAQ).
 */
import {
  CRYPT_EXPORTABLE,
  CRYPT_MACHINE_KEYSET,
  CRYPT_USER_KEYSET,
  PKCS12_NO_PERSIST_KEY,
  PKCS12_PREFER_CNG_KSP,
  PKCS12_VIRTUAL_ISOLATION_KEY,
} from '../../platform/win32/native.js';
import type { StoreLocation } from '../../platform/win32/certStore.js';

export interface ImportFlagsInput {
  location: StoreLocation;
  keyExportable: boolean;
  /** Result of the capability probe: the platform imports PFX keys into CNG. */
  cng: boolean;
  /** KeyGuard chosen (keyGuard.ts useKeyGuard): VBS-isolated CNG key, never exportable. */
  keyGuard?: boolean;
  /** profile.ts windowsKeyStorage; default 'cng' (4.x). */
  keyStorage?: 'cng' | 'pfx-default';
}

/** Flags for the persisting import of a certificate's key. */
export function pfxImportFlags(input: ImportFlagsInput): number {
  let flags = input.location === 'LocalMachine' ? CRYPT_MACHINE_KEYSET : CRYPT_USER_KEYSET;
  if (input.keyStorage === 'pfx-default') return (input.keyExportable ? flags | CRYPT_EXPORTABLE : flags) >>> 0;
  if (input.keyGuard === true) return (flags | PKCS12_PREFER_CNG_KSP | PKCS12_VIRTUAL_ISOLATION_KEY) >>> 0; // never CRYPT_EXPORTABLE
  if (input.keyExportable) flags |= CRYPT_EXPORTABLE;
  if (input.cng) flags |= PKCS12_PREFER_CNG_KSP;
  return flags >>> 0;
}

/** Flags for the capability probe: CNG, nothing persisted (the key lives only in the returned memory store). */
export function cngProbeFlags(): number {
  return (PKCS12_PREFER_CNG_KSP | PKCS12_NO_PERSIST_KEY) >>> 0;
}
