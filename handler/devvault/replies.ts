/**
 * Reply shapes shared by the dev vault's secrets and certificates routes: Key Vault's error body, attributes, and
 * list pages with an absolute nextLink.
 */
import type { StoredVersion } from './state.js';

export interface VaultUrlContext {
  vaultUrl: string;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Set by an injected 'delay' fault: the server holds the reply this long. */
  delayMs?: number;
}

export function error(status: number, code: string, message: string, innerCode?: string): Reply {
  const err: Record<string, unknown> = { code, message };
  if (innerCode) err['innererror'] = { code: innerCode };
  return { status, body: { error: err } };
}

export function attributes(v: StoredVersion): Record<string, unknown> {
  const a: Record<string, unknown> = { enabled: v.enabled };
  if (v.nbf !== undefined) a['nbf'] = v.nbf;
  if (v.exp !== undefined) a['exp'] = v.exp;
  a['created'] = v.created;
  a['updated'] = v.updated;
  a['recoveryLevel'] = 'Recoverable+Purgeable';
  a['recoverableDays'] = 90;
  return a;
}

/**
 * One page of `all` starting at the $skiptoken offset, with Key Vault's nextLink (absolute URL) when more remain.
 * Only the page's own items are rendered: rendering every item for every page made a listing of N secrets cost
 * N x N / 25 renders, server time the poll benchmark's wall then counted (bench/README.md figure 1).
 */
export function page<T>(ctx: VaultUrlContext, url: URL, path: string, all: readonly T[], render: (item: T) => Record<string, unknown>): Reply {
  const raw = url.searchParams.get('maxresults');
  const max = raw === null ? 25 : Number(raw);
  if (!Number.isInteger(max) || max < 1 || max > 25) {
    return error(400, 'BadParameter', 'The value of maxresults must be an integer between 1 and 25.');
  }
  const skip = url.searchParams.get('$skiptoken');
  let offset = 0;
  if (skip !== null) {
    const parsed = Number(Buffer.from(skip, 'base64url').toString('utf8'));
    if (!Number.isInteger(parsed) || parsed < 0) return error(400, 'BadParameter', 'Invalid $skiptoken.');
    offset = parsed;
  }
  const value = all.slice(offset, offset + max).map(render);
  let nextLink: string | null = null;
  if (offset + max < all.length) {
    const next = new URL(`${ctx.vaultUrl}${path}`);
    next.searchParams.set('api-version', url.searchParams.get('api-version') ?? '');
    next.searchParams.set('$skiptoken', Buffer.from(String(offset + max)).toString('base64url'));
    next.searchParams.set('maxresults', String(max));
    nextLink = next.toString();
  }
  return { status: 200, body: { value, nextLink } };
}
