/**
 * `kvvm service`, once serviceWorker.ts has recorded the process: wires the real parts together (vault client,
 * parser, chain check, store, status writer, logger) and runs the poll loop until it is stopped (SIGTERM/SIGINT,
 * safe to receive twice; on Windows the service host's stop request).
 */
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createParserPool } from '../certs/parserPool.js';
import { hasServerAuthEku, loadTrustedRoots, validateChain } from '../certs/chain.js';
import type { CertificateMaterial } from '../certs/material.js';
import type { CertificateSyncDeps, SyncLogger } from '../engine/certificateSync.js';
import { VERSIONS_KEPT } from '../engine/planner.js';
import { createPollMemory, type PollMemory } from '../engine/pollMemory.js';
import { KvvmError, describeError } from '../errors.js';
import { readMrseq } from '../protocol/sequence.js';
import { createLogger } from '../service/logger.js';
import { STOP_MESSAGE } from '../service/windowsServiceConfig.js';
import { DEFAULT_RETRY_POLICY, runPollLoop } from '../service/pollLoop.js';
import type { RetryPolicy } from '../vault/backoff.js';
import { EXIT_RESTING, EXIT_SETTINGS_INVALID } from '../service/restartLoop.js';
import { readRestState, REST_STATE_FILE, saveRest, type RestState } from '../service/restState.js';
import { createResilientStatusWriter, STATUS_RETRY_MS } from '../service/statusWriter.js';
import { SERVICE_CONCURRENCY, vaultConnections } from '../engine/syncCycle.js';
import { createPemStore, parsedFilesSnapshot, restoreParsedFiles } from '../stores/pemStore.js';
import { createConsumerHooks } from '../consumers/hooks.js';
import { runCommand } from '../consumers/runCommand.js';
import { createVaultReader } from '../vault/secretsClient.js';
import { overrideLogLines, readOverrides, type Overrides, type RestArrangement } from '../overrides.js';
import type { KvvmConfig } from '../settings/config.js';
import { describeProfile } from '../settings/profile.js';
import { loadConfig, reportStatus, type CommandHost, type HandlerContext } from './context.js';

/** Chain check for server-auth leaves only (4.x behaviour); the roots are read once per service start. */
export function makeChainCheck(roots: readonly X509Certificate[]): (m: CertificateMaterial, now: Date) => KvvmError | undefined {
  return (material, now) => {
    if (!hasServerAuthEku(material.leaf)) return undefined;
    const verdict = validateChain(material, { trustedRoots: roots, now });
    if (verdict.ok) return undefined;
    return new KvvmError(verdict.reason, verdict.message, { fix: verdict.fix });
  };
}

/** The Windows parts (serviceWindows.ts), loaded only there. */
type WindowsParts = typeof import('./serviceWindows.js');

/**
 * A development poll interval (overrides.ts) lets the demo and tests poll every few seconds; the settings clamp
 * (300-3600 s) is what operators get. Logged loudly so it is never mistaken for a setting.
 */
function applyDevOverrides(config: KvvmConfig, overrides: Overrides, log: SyncLogger): KvvmConfig {
  const dev = overrides.devPollIntervalS;
  if (dev === undefined) return config;
  log.warn(`development override: polling every ${dev} s instead of ${config.pollingIntervalS} s (KVVM_DEV_POLL_INTERVAL_S)`);
  return { ...config, pollingIntervalS: dev };
}

/** Tuning knob for tests and benchmarks (overrides.ts); production uses the defaults. */
function retryPolicyFor(overrides: Overrides): RetryPolicy {
  const base = overrides.retryBaseMs;
  return base !== undefined
    ? { ...DEFAULT_RETRY_POLICY, baseDelayMs: base, maxDelayMs: Math.max(base, Math.min(DEFAULT_RETRY_POLICY.maxDelayMs, base * 150)) }
    : DEFAULT_RETRY_POLICY;
}

/**
 * Runs the service for `ctx` until `stop` is aborted (its reason names what asked: "SIGTERM", ...). The caller
 * (serviceWorker.ts) has recorded the process and listens for the signals; this logs the request once a logger exists.
 */
/**
 * The shortest wait between cycles that the POSIX worker rests through (exits; its supervisor starts the next
 * cycle's process), rather than sleeping in the process. A new process costs its Node start and module load, a
 * token and a TLS connection (README: The service); below this wait the worker stays resident, as it always does
 * on Windows.
 */
const REST_MIN_MS = 60_000;

export async function runService(ctx: HandlerContext, stop: AbortController, rest?: RestArrangement): Promise<number> {
  const host = ctx.host;
  const reading = readOverrides(host.env);
  const overrides = reading.overrides;
  const log = createLogger({ logFolder: ctx.handlerEnv.logFolder, name: 'service', console: overrides.logConsole, redact: ctx.protectedValues.apply });
  for (const line of overrideLogLines(reading)) log[line.level](line.message);
  const controller = stop;
  const logStop = (): void => log.info(`received ${String(controller.signal.reason)}; stopping after the current step`);
  if (controller.signal.aborted) logStop();
  else controller.signal.addEventListener('abort', logStop, { once: true });
  // Secrets are parsed in worker threads; stopping ends them at once, so a long parse never delays `disable`.
  const parser = createParserPool();
  controller.signal.addEventListener('abort', () => void parser.close(), { once: true });
  // Windows: started by the service host (windowsServiceHost.ts) with an IPC channel; "kvvm:stop" is the SCM's stop
  // request, and a closed channel means the host is gone (killed by the SCM): stop rather than run orphaned.
  if (host.platform === 'win32' && process.send !== undefined) {
    process.on('message', (message) => {
      if (message === STOP_MESSAGE) controller.abort('a stop request from the Windows service');
    });
    process.once('disconnect', () => controller.abort('the Windows service host closing'));
    process.channel?.unref();
  }
  const status = createResilientStatusWriter({ write: (report) => reportStatus(ctx, report), log, now: host.now, retryMs: STATUS_RETRY_MS });
  try {
    const loaded = await loadConfig(ctx);
    if (!loaded.ok) {
      await status.write({ operation: 'Enable', status: 'error', code: 1, message: loaded.message });
      log.error(loaded.message);
      // Not a crash: the supervisor does not restart a service whose settings are wrong (the status says why).
      return EXIT_SETTINGS_INVALID;
    }
    const config = applyDevOverrides(loaded.config, overrides, log);
    if (config.logging && host.platform !== 'win32') {
      const { createFluentTransport } = await import('../service/fluentTransport.js');
      log.addTransport(createFluentTransport(config.logging, { onStateChange: (m) => log.warn(m) }));
      log.info(`log records also go to fluentd at ${config.logging.endpoint} (tag ${config.logging.serviceName})`);
    }
    log.info(`service started for sequence ${ctx.seq}`, {
      certificates: config.observedCertificates.length,
      pollingIntervalS: config.pollingIntervalS,
      initialSync: config.initialSync,
      profile: describeProfile(config.profile),
    });
    for (const w of config.warnings) log.warn(`settings: ${w.path}: ${w.message}`);
    const windows = host.platform === 'win32' ? await import('./serviceWindows.js') : undefined;
    const restFile = join(ctx.paths.stateDir, REST_STATE_FILE);
    const resumed: RestState | undefined = rest?.waking ? await readRestState(restFile, ctx.seq) : undefined;
    if (rest?.waking && !resumed) log.warn(`woke without a saved state for sequence ${ctx.seq} in ${restFile}: starting afresh`);
    let memory: PollMemory = createPollMemory(VERSIONS_KEPT);
    if (resumed) {
      restoreParsedFiles(resumed.store);
      try {
        memory = createPollMemory(VERSIONS_KEPT, resumed.memory);
      } catch (err) {
        log.warn(`the saved poll memory does not read (${describeError(err)}): every version is listed this cycle`);
      }
    }
    const syncDeps = buildSyncDeps(host, config, log, parser.parse, controller.signal, windows, memory);
    const outcome = await runPollLoop(
      config,
      {
        sync: syncDeps,
        writeStatus: (report) => status.write(report),
        isSuperseded: async () => ((await readMrseq(ctx.handlerEnv.extensionFolder)) ?? ctx.seq) > ctx.seq,
        sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
        random: Math.random,
        retry: retryPolicyFor(overrides),
        concurrency: SERVICE_CONCURRENCY,
        jitter: !overrides.noJitter,
        initialJitterMs: 5000,
        ...(resumed ? { resume: resumed.loop } : {}),
        ...(rest && host.platform !== 'win32'
          ? {
              rest: {
                minMs: (overrides.devRestMinS ?? REST_MIN_MS / 1000) * 1000,
                save: async (loop, delayMs) => {
                  const state: RestState = { seq: ctx.seq, loop, memory: memory.snapshot(), store: parsedFilesSnapshot() };
                  try {
                    const at = await saveRest({ stateFile: restFile, wakeFile: rest.wakeFile, state, delayMs, now: host.now() });
                    log.info(`resting until ${at.toISOString()}: the supervisor starts the next cycle then`);
                    return true;
                  } catch (err) {
                    log.warn(`cannot save the state for the rest (${describeError(err)}): this process waits for the next cycle itself`);
                    return false;
                  }
                },
              },
            }
          : {}),
        afterCycle: createConsumerHooks({
          platform: host.platform === 'win32' ? 'win32' : 'linux',
          serviceEnv: host.env,
          run: runCommand,
          log,
          followUpFile: join(ctx.paths.stateDir, 'consumers.json'),
          ...(windows ? { moveBindings: windows.moveHttpSysBindings } : {}),
        }),
      },
      controller.signal,
    );
    if (outcome === 'resting') return EXIT_RESTING;
    log.info(`service ${outcome}`);
    return 0;
  } catch (err) {
    log.error(`service failed: ${describeError(err)}`);
    try {
      await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message: `The certificate service failed: ${describeError(err)}` });
    } catch {
      // status folder unusable: the log line above is all we can do
    }
    return 1;
  } finally {
    status.close();
    await parser.close();
    await log.close();
  }
}

function buildSyncDeps(
  host: CommandHost,
  config: KvvmConfig,
  log: SyncLogger,
  parse: CertificateSyncDeps['parse'],
  stop: AbortSignal,
  windows: WindowsParts | undefined,
  memory: PollMemory,
): CertificateSyncDeps {
  const credential = windows?.windowsCredentialFor(config, host.env);
  return {
    vault: createVaultReader({
      authentication: config.authentication,
      env: host.env,
      signal: stop,
      connectionsPerVault: vaultConnections(config.observedCertificates, SERVICE_CONCURRENCY),
      ...(credential ? { credential } : {}),
    }),
    store: windows
      ? windows.createWindowsStoreFor({ linkOnRenewal: config.linkOnRenewal, log, profile: config.profile })
      : createPemStore({ keyPosition: config.profile.pemKeyPosition }),
    parse,
    // Windows validates with its own chain engine and the machine's trust stores (4.x behaviour); Linux with
    // the system CA bundle plus NODE_EXTRA_CA_CERTS.
    checkChain: windows ? windows.windowsChainCheck : makeChainCheck(loadTrustedRoots(host.env)),
    chainFailure: config.profile.chainFailure,
    now: host.now,
    log,
    memory,
  };
}
