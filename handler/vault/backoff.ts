/**
 * kvvm's own retry loop around every vault and identity call.
 *
 * The SDK's default policy retries 429/503 only when Retry-After is present and 408/5xx/resets three times
 * with 0.8 s+ delays; a 429 WITHOUT Retry-After is not retried at all. Two stacked retry layers would also make
 * the attempt count unbounded in practice, so the vault client turns the SDK's retries off (maxRetries: 0) and
 * this module owns them: honour Retry-After when the server gives one, otherwise exponential backoff with
 * jitter, capped, with a bounded number of attempts. Sleep and randomness are injected so tests count retries
 * instead of waiting.
 */
/** A bounded exponential backoff: the vault client's retries and the service's initial-sync retries alike. */
export interface RetryPolicy {
  /** Total attempts including the first (>= 1). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Growth per retry; 2 when absent. */
  factor?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };

/** A server-supplied Retry-After is honoured but never beyond this (a bogus header must not stall the service). */
export const MAX_RETRY_AFTER_MS = 120_000;

type RetryKind = 'throttled' | 'server' | 'network';

export type RetryDecision = { retry: false } | { retry: true; kind: RetryKind; retryAfterMs?: number | undefined };

export interface RetryStats {
  /** Operations started. */
  operations: number;
  /** Attempts made (first tries + retries). */
  attempts: number;
  retries: number;
  byKind: Record<RetryKind, number>;
  /** Sum of requested sleeps, ms. */
  delayMs: number;
  /** Operations that failed after exhausting attempts. */
  exhausted: number;
}

export function newRetryStats(): RetryStats {
  return { operations: 0, attempts: 0, retries: 0, byKind: { throttled: 0, server: 0, network: 0 }, delayMs: 0, exhausted: 0 };
}

export interface RetryDeps {
  sleep: (ms: number) => Promise<void>;
  /** [0, 1) */
  random: () => number;
}

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function validateRetryOptions(o: RetryPolicy): RetryPolicy {
  if (!Number.isInteger(o.maxAttempts) || o.maxAttempts < 1) throw new Error('kvvm: retry.maxAttempts must be an integer >= 1');
  if (!(o.baseDelayMs >= 0) || !(o.maxDelayMs >= o.baseDelayMs)) throw new Error('kvvm: retry delays must satisfy 0 <= baseDelayMs <= maxDelayMs');
  return o;
}

/**
 * Delay before retry number `retry` (1-based): "equal jitter" — half of the capped exponential step is fixed,
 * half random — so clients spread out but never retry immediately.
 */
export function backoffDelayMs(retry: number, o: RetryPolicy, random: () => number): number {
  // The exponent is capped so a zero base never meets an infinite power (0 × Infinity is NaN).
  const step = Math.min(o.maxDelayMs, o.baseDelayMs * (o.factor ?? 2) ** Math.min(retry - 1, 1000));
  return Math.round(step / 2 + random() * (step / 2));
}

/** Parses Retry-After (delta-seconds or HTTP date) into ms; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null | undefined, now: () => number = Date.now): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(v) * 1000));
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now()));
}

export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  classify: (err: unknown) => RetryDecision,
  options: RetryPolicy,
  deps: RetryDeps,
  stats: RetryStats,
): Promise<T> {
  stats.operations += 1;
  for (let attempt = 1; ; attempt++) {
    stats.attempts += 1;
    try {
      return await operation(attempt);
    } catch (err) {
      const decision = classify(err);
      if (!decision.retry) throw err;
      if (attempt >= options.maxAttempts) {
        stats.exhausted += 1;
        throw err;
      }
      const delay = decision.retryAfterMs ?? backoffDelayMs(attempt, options, deps.random);
      stats.retries += 1;
      stats.byKind[decision.kind] += 1;
      stats.delayMs += delay;
      await deps.sleep(delay);
    }
  }
}
