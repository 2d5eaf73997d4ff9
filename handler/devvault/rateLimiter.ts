/**
 * Fixed-window request limiter, like Key Vault's "4,000 GET transactions per 10 seconds per vault".
 * A fixed window (not sliding) is enough to produce realistic 429 bursts with a Retry-After.
 */
export interface RateLimit {
  requests: number;
  windowMs: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterS: number };

export class FixedWindowLimiter {
  private windowStart = 0;
  private count = 0;

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number,
  ) {
    if (!(limit.requests > 0) || !(limit.windowMs > 0)) throw new Error('kvvm dev-vault: rate limit requests and windowMs must be > 0');
  }

  take(): RateDecision {
    const t = this.now();
    if (t - this.windowStart >= this.limit.windowMs) {
      this.windowStart = t;
      this.count = 0;
    }
    if (this.count < this.limit.requests) {
      this.count += 1;
      return { allowed: true };
    }
    // Retry-After is whole seconds on the wire; never 0, or clients would hammer the vault.
    const remainingMs = this.limit.windowMs - (t - this.windowStart);
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil(remainingMs / 1000)) };
  }
}
