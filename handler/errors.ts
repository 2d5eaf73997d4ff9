import { codeOf, type Reason } from './reasons.js';

/**
 * One error type for everything an operator may have to act on.
 *
 * `reason` comes from the catalogue (reasons.ts), which also gives the status `code` (> 0 a user error the operator
 * can fix, < 0 a system error in kvvm itself); a throw site passes `code` only where the catalogue says one
 * reason covers both. `fix` is the sentence the status file shows after
 * the message ("assign the 'Key Vault Secrets User' role to ..."). Never put secret values in either.
 */
export class KvvmError extends Error {
  readonly code: number;
  readonly fix: string | undefined;
  /** Machine-readable reason, stable across releases; tests assert on it rather than on message text. */
  readonly reason: Reason;
  /**
   * The code the failing service or API gave, when the reason covers several (Key Vault's inner error code such as
   * ForbiddenByFirewall, or "HTTP 401"): callers that choose a fix branch on it instead of reading the message.
   */
  readonly detail: string | undefined;

  constructor(reason: Reason, message: string, options: { fix?: string; code?: number; cause?: unknown; detail?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KvvmError';
    this.reason = reason;
    this.code = options.code ?? codeOf(reason);
    this.fix = options.fix;
    this.detail = options.detail;
  }

  /** Message and fix in one operator-facing line. */
  describe(): string {
    return this.fix ? `${this.message} Fix: ${this.fix}` : this.message;
  }
}

/** Operator-facing text for any thrown value, without stack traces. */
export function describeError(err: unknown): string {
  if (err instanceof KvvmError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
