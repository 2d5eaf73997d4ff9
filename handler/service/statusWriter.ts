/**
 * The service's status writes, made to survive a full or failing status folder: a failed write never stops the
 * service (syncing goes on), the newest report is kept and retried on a timer, and the first write that succeeds
 * says how long the status could not be written and why, so a frozen "next poll at <past time>" is explained.
 */
import { describeError } from '../errors.js';
import type { HandlerStatusReport } from '../protocol/status.js';
import type { SyncLogger } from '../engine/certificateSync.js';

export interface ResilientStatusWriterOptions {
  write: (report: HandlerStatusReport) => Promise<void>;
  log: SyncLogger;
  now: () => Date;
  /** Delay between retries of a failed write. */
  retryMs: number;
}

export interface ResilientStatusWriter {
  /** Never rejects. */
  write(report: HandlerStatusReport): Promise<void>;
  /** True while the newest report has not reached the file. */
  readonly pending: boolean;
  /** Stops the retry timer (the service is stopping). */
  close(): void;
}

export const STATUS_RETRY_MS = 5000;

export function createResilientStatusWriter(options: ResilientStatusWriterOptions): ResilientStatusWriter {
  let pending: HandlerStatusReport | undefined;
  let failure: { since: Date; error: string; attempts: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let chain: Promise<void> = Promise.resolve();

  const attempt = async (): Promise<void> => {
    const report = pending;
    if (report === undefined) return;
    const note = failure
      ? ` (The status could not be written from ${failure.since.toISOString()} to ${options.now().toISOString()}, ${failure.attempts} attempts: ${failure.error}. The service kept syncing.)`
      : '';
    try {
      await options.write(note ? { ...report, message: report.message + note } : report);
    } catch (err) {
      const error = describeError(err);
      if (!failure) {
        failure = { since: options.now(), error, attempts: 1 };
        options.log.error(`cannot write the status file: ${error}; the service keeps syncing and retries every ${Math.round(options.retryMs / 1000)} s`);
      } else {
        failure.attempts += 1;
        failure.error = error;
      }
      schedule();
      return;
    }
    if (pending === report) pending = undefined;
    if (failure) {
      options.log.warn(`the status file is written again${note}`);
      failure = undefined;
    }
  };

  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void enqueue();
    }, options.retryMs);
    // The retry alone must not keep a stopping service alive.
    timer.unref();
  };

  // Writes run one after another, so an older report can never land after a newer one.
  const enqueue = (): Promise<void> => (chain = chain.then(attempt, attempt));

  return {
    write(report) {
      pending = report;
      return enqueue();
    },
    get pending() {
      return pending !== undefined;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
