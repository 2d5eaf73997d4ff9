/**
 * KeyGuard (Windows Server 2025 / Windows 11 24H2 with virtualization-based security): a PFX imported with
 * PKCS12_VIRTUAL_ISOLATION_KEY keeps its private key in the VBS-isolated part of the Microsoft Software KSP, where
 * even an administrator's process cannot read it. Such keys can NEVER be exported, so kvvm uses KeyGuard only for
 * certificates with keyExportable = false (the default), and only when the platform answers a probe: a
 * non-persisted import of the PFX at hand with the flag (like the CNG probe in flags.ts). Wine and Windows without
 * VBS answer "unsupported" and the import is the plain CNG (or CAPI) one. When a KeyGuard import itself fails, kvvm
 * falls back to the plain import rather than leave the certificate out.
 *
 * Reported: the certificate's location reads "LocalMachine\My (KeyGuard)" (log line "installed version ...") and
 * the store description records it (state.ts `keyGuard`).
 */
import { PKCS12_NO_PERSIST_KEY, PKCS12_PREFER_CNG_KSP, PKCS12_VIRTUAL_ISOLATION_KEY, type Handle, type Native } from '../../platform/win32/native.js';
import type { ImportPfx } from './pfx.js';

/** Probe flags: CNG, VBS isolation, nothing persisted. */
export function keyGuardProbeFlags(): number {
  return (PKCS12_PREFER_CNG_KSP | PKCS12_NO_PERSIST_KEY | PKCS12_VIRTUAL_ISOLATION_KEY) >>> 0;
}

/** Whether to ask for KeyGuard: the platform can (probe), it is CNG, and nobody needs to export the key. */
export function useKeyGuard(input: { keyExportable: boolean; cng: boolean; keyGuardSupported: boolean }): boolean {
  return !input.keyExportable && input.cng && input.keyGuardSupported;
}

/** A non-persisted import with `flags`: true when the platform accepts them (the memory store is closed at once). */
export function probeImport(n: Native, pfx: ImportPfx, flags: number): boolean {
  const probe = n.PFXImportCertStore({ cbData: pfx.der.length, pbData: pfx.der }, pfx.password, flags) as Handle | null;
  if (probe) n.CertCloseStore(probe, 0);
  return probe !== null;
}

const KEYGUARD_LABEL = 'KeyGuard';

/** The location text for status and logs. */
export function locationLabel(where: string, keyGuard: boolean): string {
  return keyGuard ? `${where} (${KEYGUARD_LABEL})` : where;
}
