/**
 * A thin factory over winston: one JSON-lines file per process kind in the handler's logFolder, size-capped and
 * rotated (logFile.ts: names and limits), plus an optional console. A redaction format is the last line of defence
 * against a secret reaching a log: PEM blocks, JWTs and long base64 runs are replaced before any transport sees them.
 */
import { mkdirSync } from 'node:fs';
import winston from 'winston';
import type { SyncLogger } from '../engine/certificateSync.js';
import { redactRecord } from '../redaction.js';
import { LOG_FILE_LIMITS, logFilePath } from './logFile.js';

export interface KvvmLogger extends SyncLogger {
  /** Another destination for every record (after redaction), e.g. the fluentd forwarder. */
  addTransport(transport: winston.transport): void;
  close(): Promise<void>;
}

export interface CreateLoggerOptions {
  logFolder: string;
  /** File name stem: "handler" for agent commands, "service" for the service. */
  name: string;
  console?: boolean;
  level?: string;
  /** Rotation: bytes per file and files kept. */
  maxSize?: number;
  maxFiles?: number;
  /** Applied to every string of every entry after the built-in redaction (e.g. ProtectedValues.apply). */
  redact?: (text: string) => string;
}

const redactFormat = winston.format((info, opts: unknown) => {
  const extra = (opts as { extra?: (text: string) => string } | undefined)?.extra;
  for (const key of Object.keys(info)) {
    (info as Record<string, unknown>)[key] = redactRecord((info as Record<string, unknown>)[key], extra);
  }
  return info;
});

export function createLogger(options: CreateLoggerOptions): KvvmLogger {
  mkdirSync(options.logFolder, { recursive: true, mode: 0o755 });
  const transports: winston.transport[] = [
    new winston.transports.File({
      filename: logFilePath(options.logFolder, options.name),
      maxsize: options.maxSize ?? LOG_FILE_LIMITS.maxSize,
      maxFiles: options.maxFiles ?? LOG_FILE_LIMITS.maxFiles,
      tailable: true,
    }),
  ];
  if (options.console) {
    transports.push(
      new winston.transports.Console({
        stderrLevels: ['error', 'warn', 'info', 'debug'],
        format: winston.format.printf((i) => `${String(i['timestamp'])} ${i.level}: ${String(i.message)}`),
      }),
    );
  }
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(redactFormat(options.redact ? { extra: options.redact } : {}), winston.format.timestamp(), winston.format.json()),
    defaultMeta: { pid: process.pid, component: options.name },
    transports,
  });
  // A transport that fails (a full disk, a closed socket) must not take the process down with it: winston
  // re-emits transport errors on the logger, and an 'error' event nobody listens to is fatal.
  logger.on('error', () => undefined);
  return {
    addTransport: (transport) => {
      transport.on('error', () => undefined);
      logger.add(transport);
    },
    info: (m, meta) => void logger.info(m, meta),
    warn: (m, meta) => void logger.warn(m, meta),
    error: (m, meta) => void logger.error(m, meta),
    close: () =>
      new Promise<void>((resolve) => {
        logger.on('finish', () => resolve());
        logger.end();
        // winston's 'finish' can fire before file transports flush; give them their own event.
        setTimeout(resolve, 200).unref();
      }),
  };
}
