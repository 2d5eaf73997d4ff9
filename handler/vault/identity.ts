/**
 * Managed-identity credentials for the vault client.
 *
 * Which implementation, and why:
 * - No msiEndpoint, or the standard IMDS URL (http://169.254.169.254/metadata/identity[/oauth2/token]): the
 *   library's ManagedIdentityCredential. It also honours the platform env vars (AZURE_POD_IDENTITY_AUTHORITY_HOST,
 *   IDENTITY_ENDPOINT/IMDS_ENDPOINT for Arc, App Service, ...) exactly as every other Azure SDK client does.
 * - Any other msiEndpoint: our own small IMDS client (ImdsEndpointCredential below). @azure/identity 4.13 hands
 *   token acquisition to MSAL, whose IMDS source reads its host ONLY from process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST
 *   and caches the chosen source in a STATIC field (ManagedIdentityClient.identitySource) for the whole process.
 *   Expressing a per-configuration endpoint would mean mutating global process.env before the first token and never
 *   being able to change it afterwards (a settings update would need a process restart), and the documented Linux form
 *   ".../metadata/identity" would need rewriting anyway. An IMDS GET with `Metadata: true` is small enough to own.
 *
 * Both paths convert failures into KvvmError with an operator fix (reasons identity-not-found, identity-ambiguous,
 * identity-unavailable). Tokens are never logged or put in messages.
 */
import { ManagedIdentityCredential, type AccessToken, type GetTokenOptions, type TokenCredential } from '@azure/identity';
import { readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { KvvmError } from '../errors.js';
import { remoteDetail } from '../redaction.js';
import type { AuthenticationConfig } from '../settings/config.js';
import { identityGet, type IdentityAnswer } from './identityHttp.js';
import { parseRetryAfter, withRetry, type RetryDecision, type RetryDeps, type RetryPolicy, type RetryStats } from './backoff.js';

export const DEFAULT_IMDS_HOST = '169.254.169.254';
const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
const IMDS_API_VERSION = '2018-02-01';
/** Refresh this long before expiry (IMDS tokens live ~24 h; the vault rejects expired ones). */
const REFRESH_MARGIN_MS = 5 * 60_000;

export type IdentitySource = { kind: 'library' } | { kind: 'endpoint'; tokenUrl: string };

function invalidEndpoint(msiEndpoint: string, why: string): KvvmError {
  return new KvvmError('invalid-msi-endpoint', `authenticationSettings.msiEndpoint "${msiEndpoint}" is not usable: ${why}.`, {
    fix: 'Use an absolute http URL with a host name, e.g. http://169.254.169.254/metadata/identity/oauth2/token (Azure VM) or http://localhost:40342/metadata/identity/oauth2/token (Arc), or remove msiEndpoint.',
  });
}

/** Decides which credential serves `msiEndpoint`, normalising the documented Windows/Linux/Arc spellings. */
export function resolveIdentitySource(msiEndpoint: string | undefined): IdentitySource {
  if (msiEndpoint === undefined || msiEndpoint.trim() === '') return { kind: 'library' };
  let url: URL;
  try {
    url = new URL(msiEndpoint.trim());
  } catch {
    throw invalidEndpoint(msiEndpoint, 'it is not an absolute URL (URI must contain a hostname)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidEndpoint(msiEndpoint, `scheme ${url.protocol} is not http or https`);
  if (!url.hostname) throw invalidEndpoint(msiEndpoint, 'URI must contain a hostname');
  if (url.username || url.password) throw invalidEndpoint(msiEndpoint, 'credentials in the URL are not supported');
  let path = url.pathname.replace(/\/+$/, '');
  // Linux docs spell it ".../metadata/identity", Windows ".../metadata/identity/oauth2/token"; a bare host means IMDS's path.
  if (path === '' || path === '/metadata/identity') path = IMDS_TOKEN_PATH;
  url.pathname = path;
  url.hash = '';
  if (url.hostname === DEFAULT_IMDS_HOST && url.protocol === 'http:' && url.port === '' && path === IMDS_TOKEN_PATH && url.search === '') {
    return { kind: 'library' };
  }
  return { kind: 'endpoint', tokenUrl: url.toString() };
}

function describeIdentity(clientId: string | undefined): string {
  return clientId ? `the user-assigned identity with client id ${clientId}` : "the VM's system-assigned identity";
}

/** IMDS's error_description → KvvmError. Exported for the library path, which surfaces the same texts. */
export function identityError(detail: string, clientId: string | undefined, endpoint: string, cause?: unknown): KvvmError {
  const who = describeIdentity(clientId);
  const withCause = cause === undefined ? {} : { cause };
  if (/multiple user assigned identities/i.test(detail)) {
    return new KvvmError('identity-ambiguous', `The metadata endpoint ${endpoint} refused a token for ${who}: the VM has several user-assigned identities and none was chosen.`, {
      fix: 'Set authenticationSettings.msiClientId to the client id of the user-assigned identity that has access to the vault.',
      ...withCause,
    });
  }
  if (/identity not found/i.test(detail)) {
    return new KvvmError('identity-not-found', `The metadata endpoint ${endpoint} has no ${who.replace(/^the /, '')} ("Identity not found").`, {
      fix: clientId
        ? `Assign the user-assigned identity with client id ${clientId} to this VM or scale set, or set authenticationSettings.msiClientId to the client id of a user-assigned identity that is assigned to it.`
        : 'Enable the system-assigned identity on this VM or scale set, or set authenticationSettings.msiClientId to the client id of a user-assigned identity assigned to it.',
      ...withCause,
    });
  }
  // The detail may come from the endpoint's body or the library's message: reduced, redacted and capped.
  return new KvvmError('identity-unavailable', `Could not get a managed-identity token for ${who} from ${endpoint}: ${remoteDetail(detail)}`, {
    fix: 'Check that the VM has a managed identity and that the metadata endpoint is reachable from the VM (169.254.169.254 must not go through a proxy: add it to NO_PROXY).',
    ...withCause,
  });
}

/** Wraps the library credential so its errors become KvvmErrors. */
class LibraryManagedIdentity implements TokenCredential {
  private readonly inner: ManagedIdentityCredential;

  /** For messages: where the library will ask (it reads process.env itself; AKS/Arc/App Service vars win). */
  private readonly endpointLabel: string;

  constructor(
    private readonly clientId: string | undefined,
    env: Readonly<Record<string, string | undefined>>,
  ) {
    // No redirect is followed for an identity request: the token request goes exactly where the platform says.
    const noRedirects = { redirectOptions: { maxRetries: 0 } };
    this.inner = clientId ? new ManagedIdentityCredential({ clientId, ...noRedirects }) : new ManagedIdentityCredential(noRedirects);
    this.endpointLabel = env['IDENTITY_ENDPOINT'] ?? env['AZURE_POD_IDENTITY_AUTHORITY_HOST'] ?? `http://${DEFAULT_IMDS_HOST}${IMDS_TOKEN_PATH}`;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    try {
      return await this.inner.getToken(scopes, options);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw identityError(detail, this.clientId, this.endpointLabel, err);
    }
  }
}

export interface EndpointCredentialDeps extends RetryDeps {
  now: () => number;
  retry: RetryPolicy;
  stats: RetryStats;
  /** Per-request timeout; IMDS answers in milliseconds when present. */
  timeoutMs?: number;
  /** Folders an Azure Arc challenge key may live in (default: the agent's token folder). */
  arcKeyDirs?: readonly string[];
}

const ARC_PORT = '40342';
const ARC_API_VERSION = '2019-11-01';

class ImdsHttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}: ${detail}`);
  }
}

function classifyImds(err: unknown): RetryDecision {
  if (err instanceof ImdsHttpError) {
    // Microsoft's IMDS guidance: retry 404 (identity not yet provisioned), 410 (IMDS upgrading), 429 and 5xx.
    if (err.status === 429) return { retry: true, kind: 'throttled', retryAfterMs: err.retryAfterMs };
    if (err.status === 404 || err.status === 410 || err.status >= 500) return { retry: true, kind: 'server', retryAfterMs: err.retryAfterMs };
    return { retry: false };
  }
  if (err instanceof KvvmError) return { retry: false };
  return { retry: true, kind: 'network' };
}

/** Token client for an IMDS-shaped endpoint other than the standard one. Caches per resource until near expiry. */
class ImdsEndpointCredential implements TokenCredential {
  private readonly cache = new Map<string, { token: AccessToken; refreshAt: number }>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();

  constructor(
    private readonly tokenUrl: string,
    private readonly clientId: string | undefined,
    private readonly deps: EndpointCredentialDeps,
  ) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    const list = Array.isArray(scopes) ? scopes : [scopes];
    const scope = list[0];
    if (list.length !== 1 || scope === undefined) throw new KvvmError('identity-unavailable', 'Managed identity tokens are for exactly one resource.', { code: -1 });
    const resource = scope.replace(/\/\.default$/, '');
    const cached = this.cache.get(resource);
    if (cached && this.deps.now() < cached.refreshAt) return cached.token;
    const running = this.inflight.get(resource);
    if (running) return running;
    const p = this.fetchToken(resource, options).finally(() => this.inflight.delete(resource));
    this.inflight.set(resource, p);
    return p;
  }

  private async fetchToken(resource: string, options: GetTokenOptions | undefined): Promise<AccessToken> {
    const url = new URL(this.tokenUrl);
    // Arc's HIMDS wants its own api-version (the one MSAL's AzureArc source sends).
    const isArc = url.port === ARC_PORT && (url.hostname === 'localhost' || url.hostname === '127.0.0.1');
    if (!url.searchParams.has('api-version')) url.searchParams.set('api-version', isArc ? ARC_API_VERSION : IMDS_API_VERSION);
    url.searchParams.set('resource', resource);
    if (this.clientId) url.searchParams.set('client_id', this.clientId);
    const endpoint = `${url.origin}${url.pathname}`;
    try {
      const token = await withRetry(() => this.requestOnce(url, options), classifyImds, this.deps.retry, this.deps, this.deps.stats);
      const lifetime = token.expiresOnTimestamp - this.deps.now();
      this.cache.set(resource, { token, refreshAt: token.expiresOnTimestamp - Math.min(REFRESH_MARGIN_MS, lifetime / 2) });
      return token;
    } catch (err) {
      if (err instanceof KvvmError) throw err;
      if (err instanceof ImdsHttpError) throw identityError(err.message, this.clientId, endpoint, err);
      const code = (err as { code?: unknown }).code;
      const detail = typeof code === 'string' ? `${code} ${err instanceof Error ? err.message : ''}`.trim() : err instanceof Error ? err.message : String(err);
      throw identityError(`the endpoint is unreachable (${detail})`, this.clientId, endpoint, err);
    }
  }

  private async requestOnce(url: URL, options: GetTokenOptions | undefined): Promise<AccessToken> {
    let res = await this.send(url, options, undefined);
    // Azure Arc's HIMDS answers the first request with 401 + `WWW-Authenticate: Basic realm=<key file>`; the
    // caller proves it is local and privileged by reading that file and sending its content back.
    const realm = /^Basic realm=(.+)$/i.exec(res.header('www-authenticate') ?? '')?.[1];
    if (res.status === 401 && realm !== undefined) {
      res = await this.send(url, options, `Basic ${readArcKey(realm.trim(), this.deps.arcKeyDirs ?? defaultArcKeyDirs({}))}`);
    }
    const text = res.body;
    if (res.status >= 300 && res.status < 400) {
      // Never followed: a token request goes only where the settings say (see ./identityHttp.ts).
      throw new ImdsHttpError(res.status, `the endpoint answered a redirect (HTTP ${res.status}), which kvvm does not follow for identity requests`, undefined);
    }
    if (res.status !== 200) {
      let detail = `HTTP ${res.status}`;
      try {
        const body = JSON.parse(text) as { error?: unknown; error_description?: unknown };
        if (typeof body.error_description === 'string') detail = body.error_description;
        else if (typeof body.error === 'string') detail = body.error;
      } catch {
        // Not JSON: keep the status only (never echo arbitrary bodies, they may be large).
      }
      throw new ImdsHttpError(res.status, detail, parseRetryAfter(res.header('retry-after'), this.deps.now));
    }
    return parseTokenResponse(text, this.deps.now, `${url.origin}${url.pathname}`, this.clientId);
  }

  private send(url: URL, options: GetTokenOptions | undefined, authorization: string | undefined): Promise<IdentityAnswer> {
    const headers: Record<string, string> = { Metadata: 'true', Accept: 'application/json' };
    // Only Arc's challenge answer (a local key file's content) ever travels as Authorization here; a vault token never does.
    if (authorization !== undefined) headers['Authorization'] = authorization;
    const signal = options?.abortSignal as AbortSignal | undefined;
    return identityGet(url, { headers, timeoutMs: this.deps.timeoutMs ?? 10_000, ...(signal ? { signal } : {}) });
  }
}

/** Where Arc's agent writes challenge keys (same rule as MSAL's AzureArc source). */
function defaultArcKeyDirs(env: Readonly<Record<string, string | undefined>>, platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'win32') return [join(env['ProgramData'] ?? 'C:\\ProgramData', 'AzureConnectedMachineAgent', 'Tokens')];
  return ['/var/opt/azcmagent/tokens'];
}

/**
 * Reads an Arc challenge key, refusing any path outside the agent's token folder, without the .key extension, or
 * larger than 4 KiB: the realm comes from the network, so it must not make kvvm (root) read arbitrary files.
 */
function readArcKey(realm: string, allowedDirs: readonly string[]): string {
  const file = resolve(realm);
  const inAllowed = allowedDirs.some((d) => dirname(file) === resolve(d));
  if (!inAllowed || extname(file).toLowerCase() !== '.key') {
    throw new KvvmError('identity-unavailable', `The identity endpoint asked kvvm to read ${realm}, which is not an Azure Arc token key file.`, {
      fix: 'Point msiEndpoint at the Azure Arc agent (http://localhost:40342/metadata/identity) or the Azure VM metadata endpoint.',
    });
  }
  try {
    if (statSync(file).size > 4096) throw new Error('larger than 4 KiB');
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new KvvmError('identity-unavailable', `Could not read the Azure Arc key file ${file}: ${err instanceof Error ? err.message : String(err)}.`, {
      fix: 'Run kvvm as root (or a member of the himds group) and check that the Azure Connected Machine agent is running.',
      cause: err,
    });
  }
}

/** Validates an IMDS token response (all fields are strings on the wire; numbers tolerated). */
function parseTokenResponse(text: string, now: () => number, endpoint: string, clientId: string | undefined): AccessToken {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw identityError('the endpoint returned a response that is not JSON', clientId, endpoint);
  }
  const token = body['access_token'];
  const expiresOn = Number(body['expires_on']);
  const expiresIn = Number(body['expires_in']);
  if (typeof token !== 'string' || token.length === 0) throw identityError('the token response has no access_token', clientId, endpoint);
  let expiresOnMs: number;
  if (Number.isFinite(expiresOn) && expiresOn > 0) expiresOnMs = expiresOn * 1000;
  else if (Number.isFinite(expiresIn) && expiresIn > 0) expiresOnMs = now() + expiresIn * 1000;
  else throw identityError('the token response has no valid expires_on/expires_in', clientId, endpoint);
  return { token, expiresOnTimestamp: expiresOnMs, tokenType: 'Bearer' };
}

/** The credential for an extension's authenticationSettings. */
export function createIdentityCredential(auth: AuthenticationConfig, env: Readonly<Record<string, string | undefined>>, deps: EndpointCredentialDeps): TokenCredential {
  const source = resolveIdentitySource(auth.msiEndpoint);
  const clientId = auth.msiClientId?.trim() || undefined;
  if (source.kind === 'library') return new LibraryManagedIdentity(clientId, env);
  return new ImdsEndpointCredential(source.tokenUrl, clientId, { ...deps, arcKeyDirs: deps.arcKeyDirs ?? defaultArcKeyDirs(env) });
}
