/**
 * One fleet worker process: runs `instances` simulated VMs, each with its own vault reader (own SDK client,
 * credential, connections), its own PEM store directory and the service's real poll loop (initial jitter,
 * retry policy), all started at the same wall-clock instant. Reports per-instance completion times.
 * Started by bench/fleet.ts with NODE_EXTRA_CA_CERTS trusting the dev vault and the bench CA.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadTrustedRoots } from '../handler/certs/chain.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { VERSIONS_KEPT } from '../handler/engine/planner.js';
import { createPollMemory } from '../handler/engine/pollMemory.js';
import { allInstalled, SERVICE_CONCURRENCY, vaultConnections } from '../handler/engine/syncCycle.js';
import { runPollLoop } from '../handler/service/pollLoop.js';
import type { KvvmConfig } from '../handler/settings/config.js';
import { profileFor } from '../handler/settings/profile.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { newRetryStats, type RetryPolicy } from '../handler/vault/backoff.js';
import { createVaultReader, type VaultReaderStats } from '../handler/vault/secretsClient.js';
import { countingLogger } from './common.js';
import { observedCertificates } from './fixtures.js';

export interface FleetWorkerJob {
  first: number;
  instances: number;
  certificates: number;
  vaultUrl: string;
  imdsEndpoint: string;
  root: string;
  startAt: number;
  jitter: boolean;
  initialJitterMs: number;
  pollRetry: RetryPolicy;
  readerRetry: RetryPolicy;
  /** Without backoff the retry delays are not randomised either: every instance retries in lock step. */
  randomDelays: boolean;
  timeoutMs: number;
}

export interface FleetWorkerResult {
  /** ms from startAt until the instance had every certificate; null if it never did. */
  done: (number | null)[];
  failedCycles: number;
  vault: VaultReaderStats['vault'];
  cpuMs: number;
}

async function runJob(job: FleetWorkerJob): Promise<FleetWorkerResult> {
  const stats: VaultReaderStats = { vault: newRetryStats(), identity: newRetryStats() };
  const checkChain = makeChainCheck(loadTrustedRoots(process.env));
  const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
  const done: (number | null)[] = new Array<number | null>(job.instances).fill(null);
  let failedCycles = 0;
  const instances = Array.from({ length: job.instances }, (_, k) => {
    const storeDir = join(job.root, `vm-${job.first + k}`);
    mkdirSync(storeDir, { recursive: true, mode: 0o700 });
    const config: KvvmConfig = {
      generation: '4.0',
      profile: profileFor('4.0', 'linux', 'option'),
      pollingIntervalS: 3600,
      linkOnRenewal: false,
      initialSync: 'bounded',
      observedCertificates: observedCertificates(job.vaultUrl, storeDir, 0, job.certificates),
      authentication: { msiEndpoint: job.imdsEndpoint },
      warnings: [],
    };
    // As the service builds its reader (commands/service.ts buildSyncDeps).
    const reader = createVaultReader({
      authentication: config.authentication,
      env,
      retry: job.readerRetry,
      stats,
      connectionsPerVault: vaultConnections(config.observedCertificates, SERVICE_CONCURRENCY),
    });
    return { k, config, reader, store: createPemStore({}), controller: new AbortController() };
  });
  const cpu0 = process.cpuUsage();
  await delay(Math.max(0, job.startAt - Date.now()));
  await Promise.all(
    instances.map(async (inst) => {
      const deadline = setTimeout(() => inst.controller.abort(), job.timeoutMs);
      try {
        await runPollLoop(
          inst.config,
          {
            sync: {
              vault: inst.reader,
              store: inst.store,
              parse: parseCertificateSecret,
              checkChain,
              now: () => new Date(),
              log: countingLogger(),
              // As the service (commands/service.ts): a retried cycle does not list again what it already listed.
              memory: createPollMemory(VERSIONS_KEPT),
            },
            writeStatus: async () => undefined,
            isSuperseded: async () => false,
            sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
            random: job.randomDelays ? Math.random : () => 1,
            retry: job.pollRetry,
            concurrency: SERVICE_CONCURRENCY,
            jitter: job.jitter,
            initialJitterMs: job.initialJitterMs,
            onCycle: (results) => {
              if (allInstalled(results, job.certificates)) {
                done[inst.k] = Date.now() - job.startAt;
                inst.controller.abort();
              } else {
                failedCycles += 1;
              }
            },
          },
          inst.controller.signal,
        );
      } finally {
        clearTimeout(deadline);
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { done, failedCycles, vault: stats.vault, cpuMs: (cpu.user + cpu.system) / 1000 };
}

process.once('message', (job: FleetWorkerJob) => {
  runJob(job).then(
    (result) => process.send?.(result, () => process.disconnect()),
    (err: unknown) => process.send?.({ error: String(err) }, () => process.disconnect()),
  );
});
