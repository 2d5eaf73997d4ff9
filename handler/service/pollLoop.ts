/**
 * The long-running part of the service: initial sync with its retry policy, then polling on the interval.
 * Everything it touches comes in through `PollLoopDeps`, so tests drive it with a virtual clock.
 *
 * Resting (POSIX supervisor, restartLoop.ts): when the wait before the next cycle is at least `rest.minMs`, the loop
 * hands its state to `rest.save` and returns 'resting' instead of sleeping; the process exits and its supervisor
 * starts a new one at the wake time, which goes on from that state (`resume`): no 'starting' status, no start-up
 * jitter, the same attempt count and phase, so the status only changes when something did.
 */
import type { CertificateSyncDeps, CertificateSyncResult } from '../engine/certificateSync.js';
import { allInstalled, runSyncCycle } from '../engine/syncCycle.js';
import type { HandlerStatusReport } from '../protocol/status.js';
import type { KvvmConfig } from '../settings/config.js';
import { backoffDelayMs, type RetryPolicy } from '../vault/backoff.js';
import { buildStatusReport, type ServicePhase } from './statusReport.js';

/** 25 attempts growing from 2 s by 1.5× up to 5 min: about 75 minutes in all, inside the agent's 90-minute wait. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 25, baseDelayMs: 2000, factor: 1.5, maxDelayMs: 300_000 };

/** What the next cycle needs of the loop when it runs in another process (plain JSON: dates as ISO strings). */
export interface PollLoopState {
  attempt: number;
  initialDone: boolean;
  provisioned: boolean;
  /** The phase the last status showed (kind, plus its attempt counts; the times are not needed again). */
  lastPhase:
    | { kind: 'starting' }
    | { kind: 'retrying'; attempt: number; maxAttempts?: number; nextRetryAt: string }
    | { kind: 'gave-up'; attempts: number }
    | { kind: 'polling'; nextPollAt: string };
}

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
  /**
   * Where the process may end between cycles: waits of at least `minMs` are slept by the supervisor instead, once
   * `save` has handed the state on (false: it could not, and this process sleeps through the wait itself).
   */
  rest?: { minMs: number; save: (state: PollLoopState, delayMs: number) => Promise<boolean> };
  /** The state a resting process left: this process goes on from it. */
  resume?: PollLoopState;
}

function phaseToState(phase: Exclude<ServicePhase, { kind: 'syncing' }>): PollLoopState['lastPhase'] {
  switch (phase.kind) {
    case 'starting':
    case 'gave-up':
      return { ...phase };
    case 'retrying':
      return {
        kind: 'retrying',
        attempt: phase.attempt,
        ...(phase.maxAttempts === undefined ? {} : { maxAttempts: phase.maxAttempts }),
        nextRetryAt: phase.nextRetryAt.toISOString(),
      };
    case 'polling':
      return { kind: 'polling', nextPollAt: phase.nextPollAt.toISOString() };
  }
}

function phaseFromState(state: PollLoopState['lastPhase']): Exclude<ServicePhase, { kind: 'syncing' }> {
  switch (state.kind) {
    case 'starting':
      return { kind: 'starting' };
    case 'gave-up':
      return { kind: 'gave-up', attempts: state.attempts };
    case 'retrying':
      return { kind: 'retrying', attempt: state.attempt, maxAttempts: state.maxAttempts, nextRetryAt: new Date(state.nextRetryAt) };
    case 'polling':
      return { kind: 'polling', nextPollAt: new Date(state.nextPollAt) };
  }
}

function pollDelayMs(intervalS: number, jitter: boolean, random: () => number): number {
  const base = intervalS * 1000;
  return jitter ? Math.round(base * (0.9 + 0.2 * random())) : base;
}

export async function runPollLoop(config: KvvmConfig, deps: PollLoopDeps, signal: AbortSignal): Promise<'stopped' | 'superseded' | 'resting'> {
  const certs = config.observedCertificates;
  const expected = certs.length;
  const now = (): Date => deps.sync.now();
  let results: CertificateSyncResult[] = [];
  const resume = deps.resume;
  let lastPhase: Exclude<ServicePhase, { kind: 'syncing' }> = resume ? phaseFromState(resume.lastPhase) : { kind: 'starting' };
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

  if (!resume) {
    if (!(await report({ kind: 'starting' }))) return 'superseded';
    if (deps.jitter && deps.initialJitterMs > 0) await deps.sleep(Math.round(deps.initialJitterMs * deps.random()), signal);
  }

  let initialDone = resume?.initialDone ?? config.initialSync === 'none';
  // Once every certificate has been in place (or always, without an initial-sync requirement) the extension
  // counts as provisioned; before that a give-up stays an error until the certificates arrive.
  let provisioned = resume?.provisioned ?? config.initialSync === 'none';
  let attempt = resume?.attempt ?? 0;
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
    if (deps.rest && delay >= deps.rest.minMs && !signal.aborted) {
      // A state that cannot be saved (a full disk) keeps the process for this wait instead.
      if (await deps.rest.save({ attempt, initialDone, provisioned, lastPhase: phaseToState(phase) }, delay)) return 'resting';
    }
    await deps.sleep(delay, signal);
  }
  return 'stopped';
}
