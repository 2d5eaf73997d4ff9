/**
 * `kvvm service-crashed <count> <reason> <retry ms>`: run by the POSIX supervisor (restartLoop.ts) when the
 * worker has crashed too often, to put the crash loop in the status file: `error`, the last crash reason (the
 * exit code or signal, and the worker's last error line), and when the next attempt comes. The worker's next
 * successful start replaces this status with its own.
 */
import { open } from 'node:fs/promises';
import { redactSecrets as redact } from '../redaction.js';
import { DEFAULT_RESTART_POLICY } from '../service/restartLoop.js';
import { loadHandlerContext, reportStatus, type CommandHost } from './context.js';

const TAIL_BYTES = 16 * 1024;
const REASON_CHARS = 400;

export async function serviceCrashedCommand(argv: string[], host: CommandHost): Promise<number> {
  const [countText, exitReason, retryText] = argv;
  const count = Number(countText);
  const retryMs = Number(retryText);
  if (argv.length !== 3 || !Number.isSafeInteger(count) || !Number.isSafeInteger(retryMs) || !exitReason) {
    host.stderr('usage: kvvm service-crashed <count> <reason> <retry ms>  (run by the service supervisor)\n');
    return 2;
  }
  const ctx = await loadHandlerContext(host, { needSequence: true });
  const last = await lastErrorLine(ctx.paths.serviceOutput);
  const windowMin = Math.round(DEFAULT_RESTART_POLICY.windowS / 60);
  const next = new Date(host.now().getTime() + retryMs).toISOString();
  const message =
    `The certificate service crashed ${count} times in ${windowMin} minutes; last crash: ${exitReason}${last ? `: ${last}` : ''}. ` +
    `It is restarted every ${Math.max(1, Math.round(retryMs / 1000))} s (next at ${next}); installed certificates stay in place. ` +
    `Fix: read ${ctx.paths.serviceOutput} and kvvm-service.log in ${ctx.handlerEnv.logFolder} for the cause; disable and enable the extension once it is fixed.`;
  await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message });
  return 0;
}

/** The worker's most telling recent output line: the last one naming an error, else the last line it wrote. */
export async function lastErrorLine(outputFile: string): Promise<string | undefined> {
  let text: string;
  try {
    const handle = await open(outputFile, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      text = buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('kvvm-supervisor') && !l.startsWith('at ') && !/^Node\.js v\d/.test(l) && !/^\^+$/.test(l));
  const line = [...lines].reverse().find((l) => /\b\w*(Error|error|failed|FATAL)\b/.test(l)) ?? lines.at(-1);
  return line === undefined ? undefined : redact(line).slice(0, REASON_CHARS);
}
