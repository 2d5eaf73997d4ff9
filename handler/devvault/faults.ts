/**
 * Faults tests inject into the dev vault: the next N matching requests fail in a chosen way.
 * Vault faults apply to AUTHENTICATED requests only (after the 401 challenge round trip), so a test's
 * count maps one-to-one to the client's real attempts.
 */
type FaultKind =
  /** An HTTP error status with a Key Vault error body; 429/503 may carry Retry-After. */
  | 'status'
  /** Destroy the socket without a response (client sees ECONNRESET / socket hang up). */
  | 'reset'
  /** Send headers and half of a JSON body, then destroy the socket. */
  | 'truncated'
  /** IMDS only: 200 with a body that is not a token response. */
  | 'bad-json'
  /** Hold the request for `delayMs`, then answer it normally (slow server; a client timeout fires first). */
  | 'delay';

export interface FaultSpec {
  kind?: FaultKind;
  /** For kind 'status' (default 503). */
  status?: number;
  /** For kind 'delay': how long to hold the request before answering. */
  delayMs?: number;
  /** Seconds; omitted means no Retry-After header (the case the SDK does not retry). */
  retryAfterS?: number;
  /** Error code/innererror code in the body (defaults follow the status). */
  code?: string;
  innerCode?: string;
  message?: string;
  /** How many requests to fail (default 1). */
  count?: number;
  /** Let this many matching requests through before failing (e.g. 1 = fail the second page of a listing). */
  skip?: number;
  /** Only requests for this route (e.g. 'getSecret', 'listVersions'); default all. */
  route?: string;
}

interface QueuedFault extends FaultSpec {
  remaining: number;
  toSkip: number;
}

export class FaultQueue {
  private readonly queue: QueuedFault[] = [];

  add(spec: FaultSpec): void {
    const count = spec.count ?? 1;
    if (!(count > 0)) throw new Error('kvvm dev-vault: fault count must be > 0');
    this.queue.push({ ...spec, remaining: count, toSkip: spec.skip ?? 0 });
  }

  /** The fault to apply to this request, consuming one from the first matching entry. */
  take(route: string): FaultSpec | undefined {
    const i = this.queue.findIndex((f) => f.route === undefined || f.route === route);
    const f = this.queue[i];
    if (!f) return undefined;
    if (f.toSkip > 0) {
      f.toSkip -= 1;
      return undefined;
    }
    f.remaining -= 1;
    if (f.remaining <= 0) this.queue.splice(i, 1);
    return f;
  }

  clear(): void {
    this.queue.length = 0;
  }

  get pending(): number {
    return this.queue.reduce((n, f) => n + f.remaining, 0);
  }
}
