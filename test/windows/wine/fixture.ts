import { createRequire } from 'node:module';
/**
 * Shared pieces of the tests that run INSIDE Windows Node under Wine (or on real Windows): throw-away store
 * names, observed certificates pointing at them, and a store dump taken by a FRESH Windows node process, so a
 * test proves what crypt32 persisted rather than what this process cached.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WindowsCertificateTarget } from '../../../handler/settings/config.js';
import { windowsObserved, type WindowsObserved } from '../../helpers/observed.js';
import type { StoreLocation } from '../../../handler/platform/win32/certStore.js';
import {
  CERT_STORE_DELETE_FLAG,
  CERT_STORE_PROV_SYSTEM_W,
  CERT_SYSTEM_STORE_CURRENT_USER,
  CERT_SYSTEM_STORE_LOCAL_MACHINE,
  loadNative,
} from '../../../handler/platform/win32/native.js';

export const VAULT = 'kvvmtest';

export function uniqueStoreName(): string {
  return `kvvm-test-${randomBytes(4).toString('hex')}`;
}

export function observed(location: StoreLocation, storeName: string, name: string, target: Partial<WindowsCertificateTarget> = {}): WindowsObserved {
  return windowsObserved(VAULT, name, location, storeName, target);
}

/** Deletes a whole (test) system store; CertOpenStore with CERT_STORE_DELETE_FLAG returns NULL on success. */
export function deleteSystemStore(location: StoreLocation, name: string): void {
  const n = loadNative();
  const where = location === 'LocalMachine' ? CERT_SYSTEM_STORE_LOCAL_MACHINE : CERT_SYSTEM_STORE_CURRENT_USER;
  n.CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, null, where | CERT_STORE_DELETE_FLAG, name);
}

export interface DumpedCertificate {
  thumbprint: string;
  subject: string;
  friendlyName?: string;
  description?: string;
  /** CERT_RENEWAL_PROP_ID as uppercase hex. */
  renewal?: string;
  keyContainer?: string;
  /** CERT_KEY_PROV_INFO_PROP_ID: the provider the key was imported into, and its type (0 = a CNG key storage provider). */
  keyProvider?: string;
  keyProvType?: number;
  /** CryptAcquireCertificatePrivateKey succeeded. */
  privateKeyUsable: boolean;
}

export type Dump = Record<string, DumpedCertificate[]>;

const here = dirname(fileURLToPath(import.meta.url));

/** Runs dumpStores.js in a new Windows node process; stores are "Location\\Name". */
export function dumpInFreshProcess(stores: string[]): Dump {
  const out = join(tmpdir(), `kvvm-dump-${randomBytes(4).toString('hex')}.json`);
  // stdio to 'ignore': under Wine, node.exe dies with EBADF on pipes; the result comes back in a file.
  const run = spawnSync(process.execPath, [join(here, 'dumpStores.js'), out, ...stores], { stdio: 'ignore', timeout: 120_000 });
  if (run.status !== 0) throw new Error(`dumpStores.js exited with ${String(run.status)} ${run.error?.message ?? ''}`);
  try {
    return JSON.parse(readFileSync(out, 'utf8')) as Dump;
  } finally {
    rmSync(out, { force: true });
  }
}

/** Test-only: is this Windows Node running under Wine (ntdll exports wine_get_version)? */
export function underWine(): boolean {
  const koffi = createRequire(import.meta.url)('koffi') as { load(p: string): { func(s: string): unknown } };
  try {
    koffi.load('ntdll.dll').func('const char *wine_get_version()');
    return true;
  } catch {
    return false;
  }
}
