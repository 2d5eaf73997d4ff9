/**
 * One poll cycle over every observed certificate, with bounded concurrency so a thousand certificates do not
 * open a thousand connections, and so one slow vault does not serialise the others.
 */
import type { ObservedCertificate } from '../settings/config.js';
import { syncCertificate, type CertificateSyncDeps, type CertificateSyncResult } from './certificateSync.js';

/**
 * Certificates synced at once by the service. A steady-state poll costs at most one request per certificate (often
 * none of its own: the vault's secret listing answers for many, see pollMemory.ts), so this only has to hide the
 * vault's latency: 16 in flight at 20 ms is 800 requests/s, twice Key Vault's 400/s per-vault limit.
 */
export const SERVICE_CONCURRENCY = 16;

export interface SyncCycleOptions {
  concurrency: number;
  signal?: AbortSignal;
  /** Each certificate's result as soon as it is known (the service's interim status while a slow one runs). */
  onResult?: (index: number, result: CertificateSyncResult) => void;
}

export async function runSyncCycle(certs: readonly ObservedCertificate[], deps: CertificateSyncDeps, options: SyncCycleOptions): Promise<CertificateSyncResult[]> {
  const results: CertificateSyncResult[] = new Array<CertificateSyncResult>(certs.length);
  // Started before the workers: a vault's secret listing runs beside them, each certificate waiting for its entry.
  const memory = deps.memory?.beginCycle(certs, deps.vault, deps.now());
  // Certificates whose versions are listed in full this cycle need no listing entry: they go first, so their
  // requests run while the listing's chained pages arrive instead of after its last page (bench/README.md figure 1).
  const indexes = certs.map((_, index) => index);
  const inFull = (i: number): boolean => memory?.listsInFull(certs[i] as ObservedCertificate) ?? false;
  const order = [...indexes.filter(inFull), ...indexes.filter((i) => !inFull(i))];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (options.signal?.aborted) return;
      const index = order[next++];
      const cert = index === undefined ? undefined : certs[index];
      if (index === undefined || cert === undefined) return;
      const result = await syncCertificate(cert, deps, memory);
      results[index] = result;
      options.onResult?.(index, result);
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, certs.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results.filter((r): r is CertificateSyncResult => r !== undefined);
}

/** Every certificate is installed (or skipped as not a certificate, which waiting cannot fix): what requireInitialSync waits for. */
export function allInstalled(results: readonly CertificateSyncResult[], expected: number): boolean {
  return results.length === expected && results.every((r) => r.state !== 'error');
}
