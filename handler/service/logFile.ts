/**
 * kvvm's log files: one JSON-lines file per process kind in the handler's logFolder (kvvm-<name>.log), size-capped
 * and rotated the way winston's File transport does with `tailable` (logger.ts): the newest records are always in
 * kvvm-<name>.log, older ones in kvvm-<name>1.log … kvvm-<name>4.log.
 *
 * `appendLogRecord` writes one record without winston, for the short agent commands (context.ts recordOutcome:
 * one line per command in kvvm-handler.log, the only writer of that file). Loading winston for that one line was
 * a fifth of enable's run time (bench/, figure 3: about 20 ms of CPU, its colour and stream modules). Records are the
 * same as the winston logger's: keys sorted, every string redacted, `pid` and `component` as its default metadata.
 */
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { redactRecord } from '../redaction.js';

/** Bytes per file and files kept (the current one included). */
export const LOG_FILE_LIMITS = { maxSize: 5 * 1024 * 1024, maxFiles: 5 } as const;

export function logFilePath(logFolder: string, name: string, index = 0): string {
  return join(logFolder, `kvvm-${name}${index === 0 ? '' : index}.log`);
}

export interface LogRecord {
  level: 'info' | 'warn' | 'error';
  message: string;
  time: Date;
}

export interface AppendLogOptions {
  /** Applied to every string after the built-in redaction (e.g. ProtectedValues.apply). */
  redact?: (text: string) => string;
  maxSize?: number;
  maxFiles?: number;
}

/** Appends one record to kvvm-<name>.log, rotating first when the file has reached its size. Never throws. */
export async function appendLogRecord(logFolder: string, name: string, record: LogRecord, options: AppendLogOptions = {}): Promise<void> {
  const entry = redactRecord({ component: name, level: record.level, message: record.message, pid: process.pid, timestamp: record.time.toISOString() }, options.redact);
  const file = logFilePath(logFolder, name);
  try {
    await mkdir(logFolder, { recursive: true, mode: 0o755 });
    const size = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size >= (options.maxSize ?? LOG_FILE_LIMITS.maxSize)) await rotate(logFolder, name, options.maxFiles ?? LOG_FILE_LIMITS.maxFiles);
    await appendFile(file, `${JSON.stringify(entry)}\n`);
  } catch {
    // A log that cannot be written (a full disk) must not fail the command: the status file is the contract.
  }
}

/** kvvm-<name>(i-1).log -> kvvm-<name>i.log from the oldest kept down, then the current file -> kvvm-<name>1.log. */
async function rotate(logFolder: string, name: string, maxFiles: number): Promise<void> {
  for (let i = maxFiles - 1; i > 1; i--) await rename(logFilePath(logFolder, name, i - 1), logFilePath(logFolder, name, i)).catch(() => undefined);
  await rename(logFilePath(logFolder, name), logFilePath(logFolder, name, 1));
}
