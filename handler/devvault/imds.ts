/**
 * An IMDS-shaped managed-identity token endpoint (plain HTTP, like 169.254.169.254):
 * GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...] with `Metadata: true`.
 * Errors mirror real IMDS: 400 {"error":"invalid_request","error_description":"Identity not found"} etc.
 * Tokens are opaque random strings remembered in a TokenStore that the vault consults: the vault accepts
 * exactly the tokens issued here, for the audience they were issued for, until they expire.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultQueue } from './faults.js';

export const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
/** The principal name used for the system-assigned identity in access rules and stats. */
const SYSTEM_ASSIGNED = 'system';

export interface DevIdentities {
  /** Whether the "VM" has a system-assigned identity (default true). */
  systemAssigned?: boolean;
  /** Client ids of user-assigned identities on the "VM". */
  userAssigned?: string[];
}

export interface IssuedToken {
  /** 'system' or the user-assigned client id. */
  principal: string;
  resource: string;
  expiresAtMs: number;
}

export class TokenStore {
  private readonly tokens = new Map<string, IssuedToken>();

  issue(principal: string, resource: string, expiresAtMs: number): string {
    const token = `kvvmdev.${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { principal, resource, expiresAtMs });
    return token;
  }

  lookup(token: string): IssuedToken | undefined {
    return this.tokens.get(token);
  }

  all(): string[] {
    return [...this.tokens.keys()];
  }
}

export interface ImdsStats {
  requests: number;
  tokensIssued: number;
  errors: number;
}

export interface ImdsContext {
  /** When set, behave like Azure Arc's HIMDS: 401 + Basic realm=<key file in this dir> before a token. */
  arcChallengeDir: string | undefined;
  arcSecrets: Set<string>;
  identities: Required<DevIdentities>;
  tokens: TokenStore;
  faults: FaultQueue;
  now: () => number;
  tokenLifetimeS: number;
  stats: ImdsStats;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function invalidRequest(ctx: ImdsContext, res: ServerResponse, description: string, status = 400): void {
  ctx.stats.errors += 1;
  sendJson(res, status, { error: 'invalid_request', error_description: description });
}

/** Which identity a request names, or an IMDS error description. */
function pickPrincipal(ids: Required<DevIdentities>, clientId: string | null): { principal: string } | { error: string } {
  if (clientId !== null) {
    const match = ids.userAssigned.find((c) => c.toLowerCase() === clientId.toLowerCase());
    return match ? { principal: match } : { error: 'Identity not found' };
  }
  if (ids.systemAssigned) return { principal: SYSTEM_ASSIGNED };
  const only = ids.userAssigned.length === 1 ? ids.userAssigned[0] : undefined;
  if (only !== undefined) return { principal: only };
  if (ids.userAssigned.length > 1) {
    return { error: 'Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request' };
  }
  return { error: 'Identity not found' };
}

export function handleImdsRequest(ctx: ImdsContext, req: IncomingMessage, res: ServerResponse): void {
  ctx.stats.requests += 1;
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method !== 'GET' || url.pathname.replace(/\/+$/, '') !== IMDS_TOKEN_PATH) {
    ctx.stats.errors += 1;
    sendJson(res, 404, { error: 'not_found', error_description: 'Not found' });
    return;
  }
  // Checked before anything else, as real IMDS does; SDKs probe availability with a header-less request.
  if ((req.headers['metadata'] ?? '').toString().toLowerCase() !== 'true') {
    invalidRequest(ctx, res, 'Required metadata header not specified');
    return;
  }
  if (ctx.arcChallengeDir !== undefined) {
    const auth = (req.headers.authorization ?? '').replace(/^Basic\s+/i, '');
    if (!ctx.arcSecrets.has(auth)) {
      const secret = randomBytes(32).toString('hex');
      const file = join(ctx.arcChallengeDir, `${randomBytes(8).toString('hex')}.key`);
      writeFileSync(file, secret, { mode: 0o600 });
      ctx.arcSecrets.add(secret);
      ctx.stats.errors += 1;
      res.writeHead(401, { 'WWW-Authenticate': `Basic realm=${file}`, 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'unauthorized_client', error_description: 'Basic challenge required' }));
      return;
    }
  }
  const fault = ctx.faults.take('imds');
  if (fault?.kind === 'delay') {
    // Slow IMDS: answer normally after the delay (unless the client gave up).
    setTimeout(() => {
      if (!res.destroyed) answerToken(ctx, url, res);
    }, fault.delayMs ?? 0).unref();
    return;
  }
  if (fault) {
    ctx.stats.errors += 1;
    if (fault.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault.kind === 'bad-json') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"access_token": ');
      return;
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8' };
    if (fault.retryAfterS !== undefined) headers['Retry-After'] = String(fault.retryAfterS);
    res.writeHead(fault.status ?? 500, headers);
    res.end(JSON.stringify({ error: fault.code ?? 'server_error', error_description: fault.message ?? 'Injected IMDS failure' }));
    return;
  }
  answerToken(ctx, url, res);
}

function answerToken(ctx: ImdsContext, url: URL, res: ServerResponse): void {
  if (!url.searchParams.get('api-version')) {
    invalidRequest(ctx, res, 'Required query variable api-version is missing');
    return;
  }
  const resource = url.searchParams.get('resource');
  if (!resource) {
    invalidRequest(ctx, res, "Required query variable 'resource' is missing");
    return;
  }
  const picked = pickPrincipal(ctx.identities, url.searchParams.get('client_id'));
  if ('error' in picked) {
    invalidRequest(ctx, res, picked.error);
    return;
  }
  const nowS = Math.floor(ctx.now() / 1000);
  const expiresOn = nowS + ctx.tokenLifetimeS;
  const token = ctx.tokens.issue(picked.principal, resource, expiresOn * 1000);
  ctx.stats.tokensIssued += 1;
  // Real IMDS returns every field as a string.
  sendJson(res, 200, {
    access_token: token,
    client_id: picked.principal === SYSTEM_ASSIGNED ? '00000000-0000-0000-0000-000000000000' : picked.principal,
    expires_in: String(ctx.tokenLifetimeS),
    expires_on: String(expiresOn),
    ext_expires_in: String(ctx.tokenLifetimeS),
    not_before: String(nowS),
    resource,
    token_type: 'Bearer',
  });
}
