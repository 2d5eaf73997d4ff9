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

/**
 * Certificates of one vault that share a connection. Syncing a certificate the first time is two requests (its
 * versions, then the newest), which a kept-alive connection carries back to back; every further connection costs
 * both ends a TLS handshake, 1.8-2.4 ms of CPU together against 0.30-0.34 ms for a request on an open connection
 * (measured on this project's 2-core machine, Node 20 and 22, loopback, RSA-2048 server key). Against a vault in the VM's region (a
 * millisecond or two away) eight certificates in a row cost a few tens of milliseconds of waiting; a VM with a
 * couple of certificates, the common case, then opens one connection instead of one per certificate.
 */
export const CERTIFICATES_PER_CONNECTION = 8;

/**
 * How many connections the service's vault reader may open to each vault: one per CERTIFICATES_PER_CONNECTION
 * observed certificates of that vault, at most `concurrency` (what the cycle has in flight).
 */
export function vaultConnections(certs: readonly ObservedCertificate[], concurrency: number): (vaultOrigin: string) => number | undefined {
  const perVault = new Map<string, number>();
  for (const cert of certs) {
    let origin: string;
    try {
      origin = new URL(cert.vaultUrl).origin.toLowerCase();
    } catch {
      continue; // the reader refuses the URL itself, with its own message
    }
    perVault.set(origin, (perVault.get(origin) ?? 0) + 1);
  }
  return (origin) => {
    const count = perVault.get(origin.toLowerCase());
    return count === undefined ? undefined : Math.min(Math.max(1, concurrency), Math.ceil(count / CERTIFICATES_PER_CONNECTION));
  };
}

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
  // Those of a vault whose listing runs get workers of their own, as many as memory.pace asks (at most half the
  // cycle's), so their requests are spread over the listing's pages instead of all arriving beside its first ones.
  const first: number[] = [];
  const rest: number[] = [];
  const paced = new Map<string, { queue: number[]; workers: number }>();
  certs.forEach((cert, index) => {
    if (!memory?.listsInFull(cert)) {
      rest.push(index);
      return;
    }
    const pace = memory.pace(cert);
    if (pace === undefined) {
      first.push(index);
      return;
    }
    const key = cert.vaultUrl.toLowerCase();
    const group = paced.get(key) ?? { queue: [], workers: pace };
    group.queue.push(index);
    paced.set(key, group);
  });
  const run = (queue: readonly number[], count: number): Promise<void>[] => {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        if (options.signal?.aborted) return;
        const index = queue[next++];
        const cert = index === undefined ? undefined : certs[index];
        if (index === undefined || cert === undefined) return;
        // Its vault's secret listing, if one runs, sends its first page before this certificate's requests go out.
        if (memory) await memory.ready(cert);
        const result = await syncCertificate(cert, deps, memory);
        results[index] = result;
        options.onResult?.(index, result);
      }
    };
    return Array.from({ length: Math.max(1, Math.min(count, queue.length)) }, worker);
  };
  const concurrency = Math.max(1, options.concurrency);
  let spare = Math.floor(concurrency / 2);
  const running: Promise<void>[] = [];
  for (const group of paced.values()) {
    const workers = Math.min(group.workers, spare);
    if (workers < 1) {
      first.push(...group.queue);
      continue;
    }
    spare -= workers;
    running.push(...run(group.queue, workers));
  }
  const sharedWorkers = concurrency - (Math.floor(concurrency / 2) - spare);
  running.push(...run([...first, ...rest], sharedWorkers));
  await Promise.all(running);
  return results.filter((r): r is CertificateSyncResult => r !== undefined);
}

/** Every certificate is installed (or skipped as not a certificate, which waiting cannot fix): what requireInitialSync waits for. */
export function allInstalled(results: readonly CertificateSyncResult[], expected: number): boolean {
  return results.length === expected && results.every((r) => r.state !== 'error');
}
