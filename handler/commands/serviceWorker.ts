/**
 * `kvvm service`: the long-running process enable starts. It records itself in kvvm-service.pid and listens for
 * SIGTERM/SIGINT first, and only then loads the service's module graph (vault SDK, identity, parser, stores:
 * service.ts), so that the record exists as early as possible: under systemd enable waits for it
 * (systemdService.ts awaitWorker), and disable finds the worker by it. A signal that arrives while the graph loads
 * stops the service as soon as it starts.
 */
import { takeRestArrangement } from '../overrides.js';
import { dropWorkerTunables } from '../service/restartLoop.js';
import { recordWorkerPid, releaseWorkerPid } from '../service/workerPid.js';
import { loadHandlerContext, type CommandHost } from './context.js';

export async function serviceWorkerCommand(host: CommandHost): Promise<number> {
  // The supervisor's malloc settings are for this process only: nothing it starts inherits them (restartLoop.ts).
  dropWorkerTunables(host.env);
  // Where the supervisor lets this process rest between cycles (restartLoop.ts); nothing it starts sees it.
  const rest = takeRestArrangement(host.env);
  const ctx = await loadHandlerContext(host, { needSequence: true });
  const stop = new AbortController();
  process.on('SIGTERM', () => stop.abort('SIGTERM'));
  process.on('SIGINT', () => stop.abort('SIGINT'));
  // kvvm-service.pid names the process that syncs: this one (on Windows the service host records itself).
  const ownPid = host.platform === 'win32' ? undefined : await recordWorkerPid(ctx.paths.pidFile, host.now());
  try {
    const { runService } = await import('./service.js');
    return await runService(ctx, stop, rest);
  } finally {
    if (ownPid) await releaseWorkerPid(ctx.paths.pidFile, ownPid);
  }
}
