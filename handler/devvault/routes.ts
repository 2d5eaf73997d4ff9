/**
 * The Key Vault secrets REST subset the SDK uses, with Key Vault's response shapes (see vectors/keyvault and
 * vectors/rest-api-specs): SecretBundle, SecretItem lists with nextLink, {"error":{code,message,innererror}}.
 *
 * Order of checks per request, as in Key Vault: api-version, then bearer challenge/token, then access
 * (403), then throttling (429), then injected faults, then the operation.
 */
import type { IncomingMessage } from 'node:http';
import type { FaultQueue, FaultSpec } from './faults.js';
import type { TokenStore } from './imds.js';
import type { FixedWindowLimiter } from './rateLimiter.js';
import type { SecretState, StoredVersion } from './state.js';
import { attributes, error, page, type Reply } from './replies.js';
import { CERTIFICATE_ROUTES, certificateRouteOf, operateCertificate, type CertificateContext } from './certificates.js';

export interface VaultStats {
  requests: number;
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
  /** 429 responses (rate limit and injected). */
  throttled: number;
  /** 401 responses (challenges and rejected tokens). */
  unauthorized: number;
  faultsInjected: number;
  /** TLS connections accepted (each a handshake): how many a client opened, beside what it sent on them. */
  connections: number;
  /**
   * Per route, the sum over its requests of the time each spent in the vault: from the request's headers in to its
   * answer written (res.end), the configured latency included (ms). Requests a client can only send one after
   * another (the pages of one listing) bound its wall time from below by their sum (bench/, figure 1).
   */
  residenceMs: Record<string, number>;
}

export interface VaultContext extends CertificateContext {
  vaultUrl: string;
  /** Token audience the vault expects and announces in its challenge. */
  resource: string;
  tenantId: string;
  state: SecretState;
  tokens: TokenStore;
  limiter: FixedWindowLimiter;
  faults: FaultQueue;
  faultRate: number;
  random: () => number;
  now: () => number;
  /** principal → innererror code of the 403 it gets (ForbiddenByRbac, ForbiddenByFirewall, ...). */
  denied: Map<string, string>;
  stats: VaultStats;
}

/** A 25 KB secret as base64 PFX in JSON, with room for a policy. */
const MAX_BODY = 64 * 1024;
const NAME_RE = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION_RE = /^[0-9a-f]{32}$/i;

function notFound(name: string): Reply {
  return error(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

/** SecretBundle with the key order of the recorded vectors: value, contentType, id, managed, attributes, kid. */
function bundle(ctx: VaultContext, name: string, v: StoredVersion, withValue: boolean): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (withValue) b['value'] = v.value;
  if (v.contentType !== undefined) b['contentType'] = v.contentType;
  b['id'] = `${ctx.vaultUrl}/secrets/${name}/${v.version}`;
  if (v.managed) b['managed'] = true;
  b['attributes'] = attributes(v);
  if (v.tags !== undefined) b['tags'] = v.tags;
  if (v.managed) b['kid'] = `${ctx.vaultUrl}/keys/${name}/${v.version}`;
  return b;
}

/** SecretItem (list entry): no value, no kid. */
function item(ctx: VaultContext, id: string, v: StoredVersion): Record<string, unknown> {
  const i: Record<string, unknown> = { id };
  if (v.contentType !== undefined) i['contentType'] = v.contentType;
  if (v.managed) i['managed'] = true;
  i['attributes'] = attributes(v);
  if (v.tags !== undefined) i['tags'] = v.tags;
  return i;
}

function disabledReply(): Reply {
  return error(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
}

function deniedReply(ctx: VaultContext, principal: string, innerCode: string, routeName: string): Reply {
  if (innerCode === 'ForbiddenByFirewall') {
    return error(
      403,
      'Forbidden',
      `Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\nCaller: appid=${principal}\r\nVault: ${new URL(ctx.vaultUrl).hostname}`,
      innerCode,
    );
  }
  return error(
    403,
    'Forbidden',
    `Caller is not authorized to perform action on resource.\r\nCaller: appid=${principal}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/${routeName}/action'\r\nAssignment: (not found)\r\nVault: ${new URL(ctx.vaultUrl).hostname}`,
    innerCode,
  );
}

/** Maps method + path segments to a route name (used for stats, faults and dispatch). */
function routeOf(method: string, segments: string[]): string {
  if (segments[0] === 'certificates') return certificateRouteOf(method, segments) ?? 'unknown';
  if (segments[0] !== 'secrets') return 'unknown';
  if (segments.length === 1 && method === 'GET') return 'listSecrets';
  if (segments.length === 2) {
    if (method === 'GET') return 'getSecret';
    if (method === 'PUT') return 'setSecret';
    if (method === 'DELETE') return 'deleteSecret';
  }
  if (segments.length === 3) {
    if (segments[2] === 'versions' && method === 'GET') return 'listVersions';
    if (method === 'GET') return 'getSecret';
    if (method === 'PATCH') return 'updateSecret';
  }
  return 'unknown';
}

function operate(ctx: VaultContext, route: string, segments: string[], url: URL, body: unknown): Reply {
  const name = segments[1] ?? '';
  if (route !== 'listSecrets' && route !== 'listCertificates' && !NAME_RE.test(name)) {
    return error(400, 'BadParameter', 'The request URI contains an invalid name: ' + name.slice(0, 130));
  }
  if (CERTIFICATE_ROUTES.has(route)) return operateCertificate(ctx, route, segments, url, body);
  const display = ctx.state.displayName(name);
  switch (route) {
    case 'listSecrets': {
      return page(ctx, url, '/secrets', ctx.state.names(), (n) => item(ctx, `${ctx.vaultUrl}/secrets/${n}`, ctx.state.get(n) as StoredVersion));
    }
    case 'listVersions': {
      const versions = ctx.state.versions(name);
      if (!versions) return notFound(name);
      return page(ctx, url, `/secrets/${display}/versions`, versions, (v) => item(ctx, `${ctx.vaultUrl}/secrets/${display}/${v.version}`, v));
    }
    case 'getSecret': {
      const version = segments[2];
      if (version !== undefined && !VERSION_RE.test(version)) return notFound(name);
      const v = ctx.state.get(name, version);
      if (!v) return notFound(name);
      if (!v.enabled) return disabledReply();
      return { status: 200, body: bundle(ctx, display, v, true) };
    }
    case 'setSecret': {
      const b = (body ?? {}) as { value?: unknown; contentType?: unknown; tags?: unknown; attributes?: { enabled?: unknown; nbf?: unknown; exp?: unknown } };
      if (typeof b.value !== 'string') return error(400, 'BadParameter', 'Property value is required.');
      if (b.value.length > 25 * 1024) return error(400, 'BadParameter', 'Secret value exceeds the 25 KB limit.');
      const opts: Parameters<SecretState['set']>[2] = {};
      if (typeof b.contentType === 'string') opts.contentType = b.contentType;
      if (b.tags && typeof b.tags === 'object') opts.tags = b.tags as Record<string, string>;
      if (typeof b.attributes?.enabled === 'boolean') opts.enabled = b.attributes.enabled;
      if (typeof b.attributes?.nbf === 'number') opts.notBefore = new Date(b.attributes.nbf * 1000);
      if (typeof b.attributes?.exp === 'number') opts.expiresOn = new Date(b.attributes.exp * 1000);
      const v = ctx.state.set(name, b.value, opts);
      return { status: 200, body: bundle(ctx, ctx.state.displayName(name), v, true) };
    }
    case 'updateSecret': {
      const b = (body ?? {}) as { contentType?: unknown; tags?: unknown; attributes?: { enabled?: unknown } };
      const patch: Parameters<SecretState['update']>[2] = {};
      if (typeof b.attributes?.enabled === 'boolean') patch.enabled = b.attributes.enabled;
      if (typeof b.contentType === 'string') patch.contentType = b.contentType;
      if (b.tags && typeof b.tags === 'object') patch.tags = b.tags as Record<string, string>;
      const v = ctx.state.update(name, segments[2], patch);
      if (!v) return notFound(name);
      return { status: 200, body: bundle(ctx, display, v, false) };
    }
    case 'deleteSecret': {
      const v = ctx.state.delete(name);
      if (!v) return notFound(name);
      const nowS = Math.floor(ctx.now() / 1000);
      return {
        status: 200,
        body: { recoveryId: `${ctx.vaultUrl}/deletedsecrets/${display}`, deletedDate: nowS, scheduledPurgeDate: nowS + 90 * 86400, ...bundle(ctx, display, v, false) },
      };
    }
    default:
      return error(405, 'MethodNotAllowed', 'The requested operation is not supported.');
  }
}

function challengeHeader(ctx: VaultContext): string {
  return `Bearer authorization="https://login.windows.net/${ctx.tenantId}", resource="${ctx.resource}"`;
}

/** A request's URL, path segments and route name (stats, faults, dispatch). */
export interface RoutedRequest {
  url: URL;
  segments: string[];
  route: string;
}

export function routeRequest(ctx: VaultContext, req: IncomingMessage): RoutedRequest {
  const url = new URL(req.url ?? '/', ctx.vaultUrl);
  // The SDK sends "/secrets/name/?api-version=..." (trailing slash): empty segments are not names.
  const segments = url.pathname
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => decodeURIComponent(s));
  return { url, segments, route: routeOf(req.method ?? 'GET', segments) };
}

/** Decides the reply, or returns a fault that needs socket-level handling (reset/truncated). */
export function handleVaultRequest(ctx: VaultContext, req: IncomingMessage, rawBody: Buffer, routed = routeRequest(ctx, req)): Reply | { fault: FaultSpec } {
  const { url, segments, route } = routed;
  ctx.stats.byRoute[route] = (ctx.stats.byRoute[route] ?? 0) + 1;

  if (!url.searchParams.get('api-version')) {
    return error(400, 'BadParameter', 'The request URI must contain the api-version query parameter.');
  }
  const auth = req.headers.authorization ?? '';
  const challenge = { 'WWW-Authenticate': challengeHeader(ctx) };
  if (!/^Bearer\s+\S+/i.test(auth)) {
    return { ...error(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'), headers: challenge };
  }
  const token = ctx.tokens.lookup(auth.replace(/^Bearer\s+/i, '').trim());
  if (!token) {
    return { ...error(401, 'Unauthorized', "AKV10032: Invalid issuer. The token was not issued by this vault's identity endpoint."), headers: challenge };
  }
  if (token.resource.replace(/\/+$/, '') !== ctx.resource) {
    return { ...error(401, 'Unauthorized', `AKV10022: Invalid audience. Expected ${ctx.resource}, found: ${token.resource}.`), headers: challenge };
  }
  if (token.expiresAtMs <= ctx.now()) {
    return { ...error(401, 'Unauthorized', '[TokenExpired] Error validating token: IDX10223: Lifetime validation failed.'), headers: challenge };
  }
  const denied = ctx.denied.get(token.principal);
  if (denied) return deniedReply(ctx, token.principal, denied, route);

  const rate = ctx.limiter.take();
  if (!rate.allowed) {
    return { ...error(429, 'Throttled', 'Rate limit is exceeded. Try again in ' + rate.retryAfterS + ' seconds.'), headers: { 'Retry-After': String(rate.retryAfterS) } };
  }
  const fault = ctx.faults.take(route) ?? (ctx.faultRate > 0 && ctx.random() < ctx.faultRate ? { kind: 'status' as const, status: 503 } : undefined);
  const delayMs = fault?.kind === 'delay' ? (fault.delayMs ?? 0) : 0;
  if (fault && fault.kind !== 'delay') {
    ctx.stats.faultsInjected += 1;
    if (fault.kind === 'reset' || fault.kind === 'truncated') return { fault };
    const status = fault.status ?? 503;
    const code = fault.code ?? (status === 429 ? 'Throttled' : status === 403 ? 'Forbidden' : status >= 500 ? 'ServiceUnavailable' : 'BadRequest');
    const reply = error(status, code, fault.message ?? `Injected failure (${status}).`, fault.innerCode);
    if (fault.retryAfterS !== undefined) reply.headers = { 'Retry-After': String(fault.retryAfterS) };
    return reply;
  }

  let body: unknown;
  if (rawBody.length > 0) {
    if (rawBody.length > MAX_BODY) return error(400, 'BadParameter', 'Request body too large.');
    try {
      body = JSON.parse(rawBody.toString('utf8'));
    } catch {
      return error(400, 'BadParameter', 'The request body is not valid JSON.');
    }
  }
  const reply = operate(ctx, route, segments, url, body);
  if (fault) ctx.stats.faultsInjected += 1;
  return delayMs > 0 ? { ...reply, delayMs } : reply;
}
