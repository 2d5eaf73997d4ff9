/**
 * The VaultReader the sync engine uses: the real @azure/keyvault-secrets SecretClient with a managed-identity
 * credential (./identity.ts), kvvm's retry loop (./backoff.ts) and operator-facing errors (./vaultErrors.ts).
 *
 * Security properties kept on purpose:
 * - the configured vault host is checked against the allow-list before the client exists, and EVERY request the
 *   SDK then sends (next pages, redirects, retries) is checked against that vault's origin by ./originPolicy.ts,
 *   the last step before the socket: a token never leaves for another host, port or scheme;
 * - TLS verification and the SDK's challenge-resource verification stay on; extra CAs are added, not substituted;
 * - neither tokens nor secret values are logged or put into error messages.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { SecretClient, type SecretProperties } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/identity';
import { KvvmError } from '../errors.js';
import type { AuthenticationConfig } from '../settings/config.js';
import { allowedSuffixesForMessage, EXTRA_SUFFIXES_ENV, isAllowedVaultHost } from '../cloud.js';
import { DEFAULT_RETRY, newRetryStats, realSleep, validateRetryOptions, withRetry, type RetryDecision, type RetryPolicy, type RetryStats } from './backoff.js';
import { createIdentityCredential } from './identity.js';
import { vaultOriginPolicy } from './originPolicy.js';
import { transportFor, trustedCas } from './transport.js';
import type { FetchedSecret, SecretListEntry, SecretListing, SecretVersionInfo, VaultReader } from './types.js';
import { classifyVaultError, mapVaultError, type VaultCallContext } from './vaultErrors.js';
import { userAgentPrefix } from '../version.js';

export interface VaultReaderStats {
  vault: RetryStats;
  identity: RetryStats;
}

export interface CreateVaultReaderOptions {
  authentication: AuthenticationConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** Extra trusted CA PEMs (e.g. the dev vault's), added to Node's roots. */
  tlsCa?: string[];
  retry?: RetryPolicy;
  /** Retry policy for the identity endpoint (default: 4 attempts, 0.5–8 s). */
  identityRetry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
  /**
   * The service stopping: a retry wait (a Retry-After may ask for up to 2 minutes) ends at once with
   * 'service-stopping' and nothing more is sent. Without it, `disable` waited for the wait, then killed the worker.
   */
  signal?: AbortSignal;
  /** Replaces the managed-identity credential (PaaS variant, tests of token handling). */
  credential?: TokenCredential;
  /** Folders an Azure Arc challenge key may be read from (default: the Arc agent's token folder). */
  arcKeyDirs?: readonly string[];
  /** Filled in as requests happen; pass one to aggregate across readers (benchmarks). */
  stats?: VaultReaderStats;
  /**
   * Time limit for each vault HTTP request until its response headers (and, when given, for each identity
   * request). The SDK has none by default: without one, a vault or middlebox that accepts the connection and
   * never answers would stall the poll loop forever. Default 60 s for the vault; the identity endpoint keeps 10 s.
   */
  requestTimeoutMs?: number;
  /**
   * Most connections this reader opens to a vault (its lowercased origin); undefined: one per request in flight.
   * Requests beyond it wait for a connection to be free (engine/syncCycle.ts vaultConnections says why).
   */
  connectionsPerVault?: (vaultOrigin: string) => number | undefined;
}

export const DEFAULT_VAULT_REQUEST_TIMEOUT_MS = 60_000;

export interface KvvmVaultReader extends VaultReader {
  readonly stats: VaultReaderStats;
}

const DEFAULT_IDENTITY_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 8000 };

/** Checks scheme and host of a vault URL; returns the normalised origin. Throws 'vault-host-not-allowed'. */
export function checkVaultUrl(vaultUrl: string, env: Readonly<Record<string, string | undefined>>): URL {
  let url: URL;
  try {
    url = new URL(vaultUrl);
  } catch {
    throw new KvvmError('vault-host-not-allowed', `"${vaultUrl}" is not a vault URL.`, { fix: 'Use https://<vault name>.vault.azure.net/secrets/<certificate name>.' });
  }
  const host = url.hostname.toLowerCase();
  const suffixes = allowedSuffixesForMessage(env);
  if (url.protocol !== 'https:') {
    throw new KvvmError('vault-host-not-allowed', `Refusing vault URL ${url.origin}: only https:// is allowed (a managed-identity token would travel in clear text).`, {
      fix: 'Use the https:// vault URL.',
    });
  }
  if (url.username || url.password || !isAllowedVaultHost(host, env)) {
    throw new KvvmError('vault-host-not-allowed', `Refusing to send a managed-identity token to ${host}: it is not a Key Vault host (allowed suffixes: ${suffixes}).`, {
      fix: `Use an Azure vault URL such as https://<vault name>.vault.azure.net, or, for Azure Stack Hub or a private test vault, add its DNS suffix to ${EXTRA_SUFFIXES_ENV} (comma-separated).`,
    });
  }
  return url;
}

function attributesOf(p: SecretProperties): Omit<SecretVersionInfo, 'version'> {
  return {
    enabled: p.enabled ?? true,
    createdOn: p.createdOn,
    updatedOn: p.updatedOn,
    notBefore: p.notBefore,
    expiresOn: p.expiresOn,
    contentType: p.contentType,
    managed: p.managed ?? false,
  };
}

function versionInfo(p: SecretProperties): SecretVersionInfo {
  return { version: p.version ?? '', ...attributesOf(p) };
}

function listEntry(p: SecretProperties): SecretListEntry {
  return { name: p.name, ...attributesOf(p) };
}

function stoppedError(): KvvmError {
  return new KvvmError('service-stopping', 'The service is stopping; the vault request was not retried.');
}

/** A retry wait that ends, rejecting with 'service-stopping', as soon as the service stops; the real one also clears its timer, so it cannot keep a stopped process alive. */
function stoppableSleep(injected: ((ms: number) => Promise<void>) | undefined, signal: AbortSignal): (ms: number) => Promise<void> {
  const stopped = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(stoppedError());
    else signal.addEventListener('abort', () => reject(stoppedError()), { once: true });
  });
  stopped.catch(() => undefined); // observed here; each wait below rethrows it
  return async (ms) => {
    if (signal.aborted) throw stoppedError();
    if (!injected) {
      try {
        return await delay(ms, undefined, { signal });
      } catch (err) {
        throw signal.aborted ? stoppedError() : err;
      }
    }
    return Promise.race([injected(ms), stopped]);
  };
}

export function createVaultReader(options: CreateVaultReaderOptions): KvvmVaultReader {
  const env = options.env;
  const retry = validateRetryOptions(options.retry ?? DEFAULT_RETRY);
  const now = options.now ?? Date.now;
  const stopping = options.signal;
  const deps = { sleep: stopping ? stoppableSleep(options.sleep, stopping) : (options.sleep ?? realSleep), random: options.random ?? Math.random };
  const stats = options.stats ?? { vault: newRetryStats(), identity: newRetryStats() };
  const clientId = options.authentication.msiClientId?.trim() || undefined;
  const identityLabel = clientId ? `the user-assigned identity with client id ${clientId}` : "the VM's system-assigned identity";
  // Created lazily so a bad msiEndpoint surfaces on the first read (with the vault context), not at construction.
  let credential: TokenCredential | undefined = options.credential;
  // The last tokens handed to the pipeline, so an error body that echoes one cannot carry it into a status.
  const recentTokens: string[] = [];
  const remembering = (inner: TokenCredential): TokenCredential => ({
    async getToken(scopes, opts) {
      const token = await inner.getToken(scopes, opts);
      if (token && !recentTokens.includes(token.token)) {
        recentTokens.push(token.token);
        if (recentTokens.length > 4) recentTokens.shift();
      }
      return token;
    },
  });
  const ca = trustedCas(options.tlsCa, env);
  const clients = new Map<string, SecretClient>();
  /**
   * A vault's throttling is shared by every request this reader sends it (an instance's certificates spend one
   * budget): a 429's Retry-After pauses them all, so a request that starts during the pause waits for its end
   * instead of collecting a 429 of its own (each costs an attempt, and the vault's and this machine's time).
   */
  const throttledUntil = new Map<string, number>();
  /**
   * The first attempt to each vault goes alone; the requests that arrive meanwhile wait for it to settle. It meets
   * the vault's 401 challenge, gets the token and opens the connection, which the others then reuse: without it,
   * each certificate of a starting service paid its own challenge, and its own TLS handshake on a connection of its
   * own (measured: 2 challenges per instance of the fleet benchmark, bench/README.md figure 5).
   */
  const opened = new Map<string, Promise<void>>();

  function clientFor(vaultUrl: string): SecretClient {
    const url = checkVaultUrl(vaultUrl, env);
    const key = url.origin.toLowerCase();
    let client = clients.get(key);
    if (!client) {
      credential ??= createIdentityCredential(options.authentication, env, {
        ...deps,
        now,
        retry: validateRetryOptions(options.identityRetry ?? DEFAULT_IDENTITY_RETRY),
        stats: stats.identity,
        ...(options.requestTimeoutMs !== undefined ? { timeoutMs: options.requestTimeoutMs } : {}),
        ...(options.arcKeyDirs ? { arcKeyDirs: options.arcKeyDirs } : {}),
      });
      client = new SecretClient(url.origin, remembering(credential), {
        // kvvm's backoff owns retries (see backoff.ts); two stacked layers would multiply attempts.
        retryOptions: { maxRetries: 0 },
        // Key Vault never redirects; a 3xx is reported as such (vaultErrors.ts), never followed with the token.
        redirectOptions: { maxRetries: 0 },
        userAgentOptions: { userAgentPrefix: userAgentPrefix() },
        additionalPolicies: [vaultOriginPolicy(url)],
        ...transportFor(url.hostname, ca, options.connectionsPerVault?.(key)),
      });
      clients.set(key, client);
    }
    return client;
  }

  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_VAULT_REQUEST_TIMEOUT_MS;

  /**
   * One attempt with a time limit on the HTTP exchange (until the response headers; token acquisition has its own
   * limit in ./identity.ts). kvvm passes no abort signal of its own, so an AbortError here is that time limit:
   * it becomes ETIMEDOUT (retried, then 'vault-unreachable').
   */
  async function attempt<T>(client: SecretClient, op: (client: SecretClient, requestOptions: { timeout: number }) => Promise<T>): Promise<T> {
    try {
      return await op(client, { timeout: timeoutMs });
    } catch (err) {
      if ((err as { name?: unknown } | undefined)?.name !== 'AbortError') throw err;
      throw Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT', cause: err });
    }
  }

  async function call<T>(vaultUrl: string, name: string, op: (client: SecretClient, requestOptions: { timeout: number }) => Promise<T>): Promise<T> {
    const ctx: VaultCallContext = { vaultUrl, secretName: name, identity: identityLabel, knownTokens: recentTokens };
    const client = clientFor(vaultUrl);
    const vaultKey = client.vaultUrl.toLowerCase();
    // The pause this operation has already waited out (its own Retry-After is slept by withRetry).
    let waited = 0;
    const paced = async (): Promise<T> => {
      const until = throttledUntil.get(vaultKey) ?? 0;
      if (until > waited && until > now()) {
        waited = until;
        await deps.sleep(until - now());
      }
      const opening = opened.get(vaultKey);
      if (opening) {
        await opening;
        return attempt(client, op);
      }
      const result = attempt(client, op);
      opened.set(
        vaultKey,
        result.then(
          () => undefined,
          () => undefined,
        ),
      );
      return result;
    };
    const classify = (err: unknown): RetryDecision => {
      if (stopping?.aborted) return { retry: false };
      const decision = classifyVaultError(err, now);
      if (decision.retry && decision.kind === 'throttled' && decision.retryAfterMs !== undefined) {
        waited = Math.max(throttledUntil.get(vaultKey) ?? 0, now() + decision.retryAfterMs);
        throttledUntil.set(vaultKey, waited);
      }
      return decision;
    };
    try {
      return await withRetry(paced, classify, retry, deps, stats.vault);
    } catch (err) {
      throw mapVaultError(err, ctx);
    }
  }

  return {
    stats,
    async getSecret(vaultUrl, name, version) {
      const secret = await call(vaultUrl, name, (c, requestOptions) => c.getSecret(name, version === undefined ? { requestOptions } : { version, requestOptions }));
      if (secret.value === undefined) {
        throw new KvvmError('vault-error', `Vault returned secret "${name}" without a value.`);
      }
      return { ...versionInfo(secret.properties), name: secret.name, value: secret.value, keyId: secret.properties.certificateKeyId } satisfies FetchedSecret;
    },
    async listVersions(vaultUrl, name) {
      // A failed page restarts the whole listing: keyvault-secrets 4.11's byPage() maps pages with Array.map and
      // drops their continuationToken, so a listing cannot be resumed mid-way. Version lists are short (one page
      // of 25 for almost every certificate), so the restart costs little.
      const out = await call(vaultUrl, name, async (c, requestOptions) => {
        const all: SecretVersionInfo[] = [];
        for await (const p of c.listPropertiesOfSecretVersions(name, { requestOptions })) all.push(versionInfo(p));
        return all;
      });
      // Newest first; versions without a creation time sort last.
      const t = (v: SecretVersionInfo): number => v.createdOn?.getTime() ?? Number.MIN_SAFE_INTEGER;
      return out.sort((a, b) => t(b) - t(a));
    },
    async listSecrets(vaultUrl, onPage, maxPages) {
      // Like listVersions, a failed page restarts the listing (the SDK cannot resume one); onPage tolerates repeats.
      return call(vaultUrl, "(the vault's secret listing)", async (c, requestOptions): Promise<SecretListing> => {
        let pages = 0;
        for await (const page of c.listPropertiesOfSecrets({ requestOptions }).byPage()) {
          pages += 1;
          if (!onPage(page.map(listEntry)) || pages >= maxPages) return { pages, complete: false };
        }
        return { pages, complete: true };
      });
    },
  };
}
