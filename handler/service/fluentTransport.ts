/**
 * loggingSettings `logger: "fluentd"` (KeyVaultForLinux): every service log record also goes to a fluentd
 * forward endpoint, tagged with `servicename`, through @fluent-org/logger (the fluent organisation's
 * forward-protocol client: reconnects with backoff, bounded send queue). The log file stays the record of
 * truth; forwarding is best effort and must never block or crash the service, so:
 *  - emit is fire-and-forget (its promise is caught); a record never waits for the network;
 *  - while the endpoint is down the queue is capped (count and bytes) and the OLDEST records are dropped;
 *  - socket errors are handled (an unhandled 'error' event would kill the process) and reported in the log
 *    file once per outage, not once per record.
 * Records reach the transport after the logger's redaction format, like every other transport.
 * Loaded with a dynamic import only when configured, so a service without it does not carry the client.
 */
import { FluentClient, FluentSocketEvent } from '@fluent-org/logger';
import TransportStream from 'winston-transport';
import type { LoggingConfig } from '../settings/config.js';

/** Records and bytes kept while the endpoint is unreachable; older ones are dropped first. */
const FLUENT_QUEUE_LIMIT = { length: 1000, size: 1024 * 1024 } as const;

export interface FluentTransportOptions {
  /** Told once when forwarding starts failing and once when it works again (goes to the log file). */
  onStateChange?: (message: string) => void;
  /** Reconnect backoff ceiling (ms). */
  maxReconnectDelayMs?: number;
}

export function createFluentTransport(config: LoggingConfig, options: FluentTransportOptions = {}): TransportStream {
  const target = config.target;
  const client = new FluentClient(config.serviceName, {
    socket: {
      ...(target.kind === 'tcp' ? { host: target.host, port: target.port } : { path: target.path }),
      timeout: 5000,
      reconnect: { backoff: 2, delay: 500, minDelay: 500, maxDelay: options.maxReconnectDelayMs ?? 30_000 },
    },
    milliseconds: true,
    sendQueueMaxLimit: FLUENT_QUEUE_LIMIT,
    sendQueueNotFlushableLimit: FLUENT_QUEUE_LIMIT,
    // On stop: give queued records a moment, never hold the service's exit for long.
    disconnect: { waitForPending: true, waitForPendingDelay: 1000, socketDisconnectDelay: 0 },
  });
  let failing = false;
  const failed = (err: Error): void => {
    if (failing) return;
    failing = true;
    options.onStateChange?.(
      `fluentd forwarding to ${config.endpoint} failed (${err.message}); records are queued (at most ${FLUENT_QUEUE_LIMIT.length}) and the connection is retried`,
    );
  };
  client.socketOn(FluentSocketEvent.ERROR, failed);
  client.socketOn(FluentSocketEvent.WRITABLE, () => {
    if (!failing) return;
    failing = false;
    options.onStateChange?.(`fluentd forwarding to ${config.endpoint} works again`);
  });

  class FluentForwardTransport extends TransportStream {
    override log(info: Record<string | symbol, unknown>, next: () => void): void {
      const record: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(info)) record[k] = v;
      client.emit(record).catch((err: unknown) => failed(err instanceof Error ? err : new Error(String(err))));
      next();
    }

    override close(): void {
      void client.disconnect().catch(() => undefined);
    }
  }
  return new FluentForwardTransport();
}
