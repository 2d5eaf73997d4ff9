/**
 * One error type for everything an operator may have to act on.
 *
 * `code` follows the extension-platform convention: > 0 is a user (configuration or environment) error the
 * operator can fix, < 0 is a system error in kvvm itself. `fix` is the sentence the status file shows after
 * the message ("assign the 'Key Vault Secrets User' role to ..."). Never put secret values in either.
 */
export class KvvmError extends Error {
  readonly code: number;
  readonly fix: string | undefined;
  /** Machine-readable reason, stable across releases; tests assert on it rather than on message text. */
  readonly reason: string;

  constructor(reason: string, message: string, options: { fix?: string; code?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KvvmError';
    this.reason = reason;
    this.code = options.code ?? 1;
    this.fix = options.fix;
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
