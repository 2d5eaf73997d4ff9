/**
 * Figure 5: a fleet of simulated instances started at once against ONE dev vault with the real rate limit,
 * with the service's initial jitter and backoff, and with both turned off, side by side.
 *
 * Each instance is the real poll loop with its own reader and store (bench/fleetWorker.ts), run in a few worker
 * processes; the vault runs in its own process. Secrets are PEM (not PKCS#12) here: this one machine plays
 * thousands of VMs, and thousands of PKCS#12 decodes on its two cores would measure this machine's CPU instead
 * of the vault's limit (figure 2 measures decoding).
 */
import { fork } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RETRY_POLICY } from '../handler/service/pollLoop.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../handler/vault/backoff.js';
import { packagedKvvm } from './agentRun.js';
import { limiterMinimumMs } from './common.js';
import { buildVaultState, makeCertPool, saveVaultState } from './fixtures.js';
import type { FleetWorkerJob, FleetWorkerResult } from './fleetWorker.js';
import { count, timing, type BenchEntry } from './report.js';
import { startVaultProcess } from './vaultHost.js';

export interface FleetOptions {
  instances: number;
  certificates: number;
  processes: number;
  rate: { requests: number; windowMs: number };
  initialJitterMs: number;
  pollRetry: RetryPolicy;
  readerRetry: RetryPolicy;
  /** "off": no initial jitter, no retry inside a cycle, a fixed retry delay without randomness. */
  offPollRetry: RetryPolicy;
  timeoutMs: number;
  /**
   * Runs of the jitter+backoff mode (the one with a target): its time is their median, its failed syncs their sum.
   * On a 2-core machine the time follows the simulation's CPU, and one run can land a second either way.
   */
  runs: number;
}

/** 2,000 VMs x 2 certificates, Key Vault's 4,000 / 10 s, the service's own 5 s initial jitter and retry policies. */
export const FLEET_FULL: FleetOptions = {
  instances: 2000,
  certificates: 2,
  processes: 2,
  rate: { requests: 4000, windowMs: 10_000 },
  initialJitterMs: 5000,
  pollRetry: DEFAULT_RETRY_POLICY,
  readerRetry: DEFAULT_RETRY,
  offPollRetry: { maxAttempts: 25, baseDelayMs: 2000, factor: 1, maxDelayMs: 2000 },
  timeoutMs: 300_000,
  runs: 3,
};

/**
 * Everything scaled by 10 in count and time: 200 VMs, 400 requests per 1 s window, 0.5 s initial jitter, retry
 * delays from 0.2 s. Retry-After stays whole seconds (the vault's wire format), i.e. 1 s here.
 */
export const FLEET_QUICK: FleetOptions = {
  instances: 200,
  certificates: 2,
  processes: 1,
  rate: { requests: 400, windowMs: 1000 },
  initialJitterMs: 500,
  pollRetry: { ...DEFAULT_RETRY_POLICY, baseDelayMs: 200, maxDelayMs: 30_000 },
  readerRetry: { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 3000 },
  offPollRetry: { maxAttempts: 25, baseDelayMs: 200, factor: 1, maxDelayMs: 200 },
  // Far above the ~7-22 s a quick fleet takes (idle to loaded): an instance still without its certificates at the
  // limit counts as a failed sync, which is gated, so the limit must not be reachable by load alone.
  timeoutMs: 180_000,
  runs: 1,
};

/**
 * Where the instances' store directories go: tmpfs (/dev/shm) when there is one. Every simulated VM has a disk of
 * its own; on one disk, 4,000 installs' journaled metadata calls queue behind each other (this machine's ext4:
 * mkdir 0.21 ms, symlink 0.63 ms, each blocking its worker), which would measure this disk, not the vault's limit.
 * Figure 2 measures installing on the real disk.
 */
function instancesDisk(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

const WORKER = join(fileURLToPath(new URL('.', import.meta.url)), 'fleetWorker.js');

interface ModeResult {
  maxDoneMs: number;
  completed: number;
  failedCycles: number;
  throttled: number;
  requests: number;
  /** TLS connections the vault accepted (each a handshake on both ends). */
  connections: number;
  clientRetries: number;
  workerCpuMs: number;
}

async function runMode(o: FleetOptions, withJitter: boolean, progress: (s: string) => void): Promise<ModeResult> {
  // The instances are the service, which runs on the runtime the Linux package ships (as figures 3 and 4 do): its
  // X509Certificate parses a certificate in ~34 us where Node 20 takes ~147 us (measured 2026-12-03).
  const { node } = await packagedKvvm();
  const root = mkdtempSync(join(instancesDisk(), 'kvvm-bench-fleet-'));
  const pool = makeCertPool(o.certificates);
  saveVaultState(join(root, 'vault'), buildVaultState(pool, o.certificates, 'pem'));
  const vault = await startVaultProcess({ stateDir: join(root, 'vault'), rateLimit: o.rate });
  try {
    const trust = join(root, 'trusted.pem');
    writeFileSync(trust, readFileSync(vault.caCertFile, 'utf8') + pool.ca.certPem);
    const startAt = Date.now() + 1500 + o.instances; // time for every worker to build its instances
    const per = Math.ceil(o.instances / o.processes);
    progress(`fleet: ${o.instances} instances ${withJitter ? 'with' : 'WITHOUT'} jitter and backoff`);
    const results = await Promise.all(
      Array.from({ length: o.processes }, (_, p) => {
        const job: FleetWorkerJob = {
          first: p * per,
          instances: Math.min(per, o.instances - p * per),
          certificates: o.certificates,
          vaultUrl: vault.vaultUrl,
          imdsEndpoint: vault.imdsEndpoint,
          root,
          startAt,
          jitter: withJitter,
          initialJitterMs: withJitter ? o.initialJitterMs : 0,
          pollRetry: withJitter ? o.pollRetry : o.offPollRetry,
          readerRetry: withJitter ? o.readerRetry : { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
          randomDelays: withJitter,
          timeoutMs: o.timeoutMs,
        };
        const child = fork(WORKER, [], {
          execPath: node,
          env: { ...process.env, NODE_EXTRA_CA_CERTS: trust, KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        return new Promise<FleetWorkerResult>((resolve, reject) => {
          child.once('message', (m: FleetWorkerResult | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
          child.once('exit', (code) => reject(new Error(`fleet worker exited (${code})`)));
          child.send(job);
        });
      }),
    );
    const stats = await vault.stats();
    const done = results.flatMap((r) => r.done);
    const finished = done.filter((d): d is number => d !== null);
    return {
      maxDoneMs: finished.length === done.length ? Math.max(...finished) : o.timeoutMs,
      completed: finished.length,
      failedCycles: results.reduce((a, r) => a + r.failedCycles, 0),
      throttled: stats.vault.throttled,
      requests: stats.vault.requests,
      connections: stats.vault.connections,
      clientRetries: results.reduce((a, r) => a + r.vault.retries, 0),
      workerCpuMs: results.reduce((a, r) => a + r.cpuMs, 0),
    };
  } finally {
    await vault.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The run whose time is the median (the lower middle one of an even number). */
function medianRun(runs: readonly ModeResult[]): ModeResult {
  const sorted = [...runs].sort((a, b) => a.maxDoneMs - b.maxDoneMs);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** The issue's target (issue 12): the fleet has every certificate within 1.5 times the vault-rate floor. */
const FLEET_TIME_TARGET = 1.5;

export async function benchFleet(o: FleetOptions, progress: (s: string) => void): Promise<BenchEntry[]> {
  // The floor: every instance lists and fetches every certificate once (401 challenges are not rate limited), at
  // the dev vault limiter's true minimum (common.ts). The sustained-rate floor, R/budget windows (20 s for 8,000),
  // was no lower bound: a run finished in 16.5 s.
  const limited = o.instances * o.certificates * 2;
  const floor = limiterMinimumMs(limited, o.rate);
  const params = `${o.instances} instances x ${o.certificates} certificates, limit ${o.rate.requests}/${o.rate.windowMs / 1000} s (fixed window), floor ${limited} requests: the limiter's minimum, ${floor / o.rate.windowMs} window(s)`;
  const entries: BenchEntry[] = [];
  for (const withJitter of [true, false]) {
    const runs: ModeResult[] = [];
    for (let i = 0; i < (withJitter ? Math.max(1, o.runs) : 1); i++) runs.push(await runMode(o, withJitter, progress));
    const r = medianRun(runs);
    const each =
      runs.length === 1
        ? ''
        : `; the time is the median of ${runs.length} runs (${runs.map((x) => `${(x.maxDoneMs / 1000).toFixed(2)} s: ${x.throttled} x 429, worker CPU ${(x.workerCpuMs / 1000).toFixed(1)} s`).join('; ')}), the 429s and this note's other figures are the median run's`;
    const failed = runs.reduce((a, x) => a + x.failedCycles, 0);
    const incomplete = runs.reduce((a, x) => a + (o.instances - x.completed), 0);
    const label = withJitter ? 'fleet (jitter+backoff)' : 'fleet (no jitter, no backoff)';
    const how = withJitter
      ? `initial jitter up to ${o.initialJitterMs} ms, reader retries ${o.readerRetry.maxAttempts} attempts honouring Retry-After, cycle retry from ${o.pollRetry.baseDelayMs} ms x${o.pollRetry.factor}`
      : `no initial jitter, no retry inside a cycle, every failed cycle retried after exactly ${o.offPollRetry.baseDelayMs} ms`;
    entries.push(
      // The issue's target for the service's own policies (jitter+backoff); none for the mode without them. Shown in
      // the full run's table, never gated: the floor is computed, and on a 2-core machine the simulated instances'
      // own CPU bounds the time (see the note).
      timing(
        `${label}: time to all certificates`,
        r.maxDoneMs,
        floor,
        withJitter ? FLEET_TIME_TARGET : null,
        'ms',
        `${params}; ${how}; ${r.completed}/${o.instances} instances complete; ${r.requests} vault requests (incl. 401 challenges) on ${r.connections} TLS connections; ${r.clientRetries} client retries; worker CPU ${r.workerCpuMs.toFixed(0)} ms${each}`,
      ),
      count(`${label}: 429s`, r.throttled, null),
      // An instance stopped at the time limit may be inside a cycle that never ends (retrying), so its failure is
      // not among the cycles that ended: it counts on its own.
      count(
        `${label}: failed syncs`,
        failed + incomplete,
        withJitter ? 1 : null,
        `poll cycles that ended with a certificate missing (${failed}) + instances without every certificate at the time limit (${incomplete})${runs.length === 1 ? '' : `, over all ${runs.length} runs`}`,
      ),
    );
  }
  return entries;
}
