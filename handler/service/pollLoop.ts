/**
 * The long-running part of the service: initial sync with its retry policy, then polling on the interval.
 * Everything it touches comes in through `PollLoopDeps`, so tests drive it with a virtual clock.
 */
import type { CertificateSyncDeps, CertificateSyncResult } from '../engine/certificateSync.js';
import { allInstalled, runSyncCycle } from '../engine/syncCycle.js';
import type { HandlerStatusReport } from '../protocol/status.js';
import type { KvvmConfig } from '../settings/config.js';
import { backoffDelayMs, type RetryPolicy } from '../vault/backoff.js';
import { buildStatusReport, type ServicePhase } from './statusReport.js';

/** 25 attempts growing from 2 s by 1.5× up to 5 min: about 75 minutes in all, inside the agent's 90-minute wait. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 25, baseDelayMs: 2000, factor: 1.5, maxDelayMs: 300_000 };

export interface PollLoopDeps {
  sync: CertificateSyncDeps;
  writeStatus: (report: HandlerStatusReport) => Promise<void>;
  /** True when a newer sequence number took over: this loop must exit without touching status. */
  isSuperseded: () => Promise<boolean>;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  random: () => number;
  /** The bounded initial sync's retries (maxAttempts: 4.0 has 25). */
  retry: RetryPolicy;
  concurrency: number;
  /** Spread polls over ±10 % of the interval, and delay the first sync by up to `initialJitterMs`. */
  jitter: boolean;
  initialJitterMs: number;
  /** Runs after every cycle, before the status is written: hands changed certificates to their consumers
   *  (onChange commands, Windows bindings) and adds what they did to the results. */
  afterCycle?: (results: CertificateSyncResult[]) => Promise<void>;
  /** While a cycle runs longer than this, the status is rewritten with the results known so far (default 5 s), so
   *  one slow certificate (a parse at its CPU budget, a slow vault) never holds back what the others did. */
  progressWriteMs?: number;
  /** Called after every cycle (tests, the demo's live table). */
  onCycle?: (results: readonly CertificateSyncResult[]) => void;
}

function pollDelayMs(intervalS: number, jitter: boolean, random: () => number): number {
  const base = intervalS * 1000;
  return jitter ? Math.round(base * (0.9 + 0.2 * random())) : base;
}

export async function runPollLoop(config: KvvmConfig, deps: PollLoopDeps, signal: AbortSignal): Promise<'stopped' | 'superseded'> {
  const certs = config.observedCertificates;
  const expected = certs.length;
  const now = (): Date => deps.sync.now();
  let results: CertificateSyncResult[] = [];
  let lastPhase: Exclude<ServicePhase, { kind: 'syncing' }> = { kind: 'starting' };
  // Status writes go one after another: an interim write never lands after the end-of-cycle one.
  let writing: Promise<unknown> = Promise.resolve();
  const write = (phase: ServicePhase, shown: readonly CertificateSyncResult[]): Promise<void> => {
    const next = writing.then(() => deps.writeStatus(buildStatusReport({ mode: config.initialSync, phase, expected, results: shown, warnings: config.warnings })));
    writing = next.catch(() => undefined);
    return next;
  };
  const report = async (phase: Exclude<ServicePhase, { kind: 'syncing' }>): Promise<boolean> => {
    if (await deps.isSuperseded()) return false;
    lastPhase = phase;
    await write(phase, results);
    return true;
  };
  /** One cycle, with interim status writes while it outlasts progressWriteMs and new results keep arriving. */
  const cycle = async (): Promise<CertificateSyncResult[]> => {
    const previous = new Map(results.map((r) => [r.cert, r]));
    const latest: Array<CertificateSyncResult | undefined> = certs.map((c) => previous.get(c));
    let fresh = false;
    const since = now();
    const timer = setInterval(() => {
      if (!fresh) return;
      fresh = false;
      const shown = latest.filter((r): r is CertificateSyncResult => r !== undefined);
      void deps
        .isSuperseded()
        .then((superseded) => (superseded ? undefined : write({ kind: 'syncing', since, previous: lastPhase }, shown)))
        .catch(() => undefined); // the end-of-cycle write reports what matters; an interim one may fail quietly
    }, deps.progressWriteMs ?? 5000);
    timer.unref?.();
    try {
      return await runSyncCycle(certs, deps.sync, {
        concurrency: deps.concurrency,
        signal,
        onResult: (index, result) => {
          latest[index] = result;
          fresh = true;
        },
      });
    } finally {
      clearInterval(timer);
      await writing;
    }
  };

  if (!(await report({ kind: 'starting' }))) return 'superseded';
  if (deps.jitter && deps.initialJitterMs > 0) await deps.sleep(Math.round(deps.initialJitterMs * deps.random()), signal);

  let initialDone = config.initialSync === 'none';
  // Once every certificate has been in place (or always, without an initial-sync requirement) the extension
  // counts as provisioned; before that a give-up stays an error until the certificates arrive.
  let provisioned = config.initialSync === 'none';
  let attempt = 0;
  while (!signal.aborted) {
    results = await cycle();
    if (signal.aborted) break;
    await deps.afterCycle?.(results);
    deps.onCycle?.(results);
    let phase: Exclude<ServicePhase, { kind: 'syncing' }>;
    let delay: number;
    if (!initialDone && !allInstalled(results, expected)) {
      attempt += 1;
      const bounded = config.initialSync === 'bounded';
      if (bounded && attempt >= deps.retry.maxAttempts) {
        initialDone = true;
        phase = { kind: 'gave-up', attempts: attempt };
        delay = pollDelayMs(config.pollingIntervalS, deps.jitter, deps.random);
      } else {
        delay = backoffDelayMs(attempt, deps.retry, deps.random);
        phase = {
          kind: 'retrying',
          attempt,
          maxAttempts: bounded ? deps.retry.maxAttempts : undefined,
          nextRetryAt: new Date(now().getTime() + delay),
        };
      }
    } else {
      initialDone = true;
      if (allInstalled(results, expected)) provisioned = true;
      delay = pollDelayMs(config.pollingIntervalS, deps.jitter, deps.random);
      phase = provisioned ? { kind: 'polling', nextPollAt: new Date(now().getTime() + delay) } : { kind: 'gave-up', attempts: attempt };
    }
    if (!(await report(phase))) return 'superseded';
    await deps.sleep(delay, signal);
  }
  return 'stopped';
}
