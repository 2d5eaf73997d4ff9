import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { KvvmError } from '../errors.js';
import { writeFileAtomic } from './atomicFile.js';
import { truncateChars } from './text.js';

type EventLevel = 'Critical' | 'Error' | 'Warning' | 'Verbose' | 'Informational';

export interface ExtensionEvent {
  level: EventLevel;
  taskName: string;
  message: string;
  operationId: string;
  /** The extension version; the agent names the telemetry event "<handler>-<Version>". Default "1.0". */
  version?: string;
}

/** WALinuxAgent telemetry limits: 3072 chars of message, 6 KiB for the whole event. */
export const EVENT_LIMITS = { messageChars: 3072, eventBytes: 6 * 1024 } as const;

/**
 * Write one telemetry event as `<digits>.json` in the agent's events folder. Every value is a string (the agent
 * strips each value as text). Written under a `.tmp` name first: the agent collects and DELETES every `<digits>.json`
 * it sees, so it must never see half a file. Returns the file written.
 */
export async function writeEvent(eventsFolder: string, event: ExtensionEvent, now: Date): Promise<string> {
  if (event.message.trim() === '') throw new KvvmError('event-invalid', 'Refusing to write a telemetry event with an empty message (the agent drops it).');
  const body = {
    Version: truncateChars(event.version ?? '1.0', 64),
    Timestamp: now.toISOString(),
    TaskName: truncateChars(event.taskName, 256),
    EventLevel: event.level,
    Message: truncateChars(event.message, EVENT_LIMITS.messageChars),
    EventPid: String(process.pid),
    EventTid: String(threadId),
    OperationId: truncateChars(event.operationId, 128),
  };
  let text = JSON.stringify(body);
  // Multi-byte or heavily escaped messages can pass 6 KiB at 3072 chars: shorten until the event fits.
  while (Buffer.byteLength(text) > EVENT_LIMITS.eventBytes && body.Message.length > 1) {
    body.Message = truncateChars(body.Message, Math.floor(body.Message.length * 0.8));
    text = JSON.stringify(body);
  }
  mkdirSync(eventsFolder, { recursive: true });
  // Milliseconds plus a random suffix: unique across concurrent writers, and sorts by time as the agent expects. The
  // suffix only spreads names (no secret rides on it), so Math.random, not node:crypto (lazyCrypto.ts).
  const file = join(eventsFolder, `${now.getTime()}${String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0')}.json`);
  await writeFileAtomic(file, text);
  return file;
}
