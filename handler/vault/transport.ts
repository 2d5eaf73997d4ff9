/**
 * Transport options for SecretClient: extra trusted CAs and RFC 6761 loopback resolution.
 *
 * - Extra CAs are ADDED to Node's bundled roots (tls.rootCertificates) and to NODE_EXTRA_CA_CERTS: an explicit
 *   `ca` replaces the default trust store, so passing only the dev CA would silently drop the public roots.
 *   Verification is never disabled.
 * - `*.localhost` names are loopback by RFC 6761 but glibc does not resolve them. The dev vault is served as
 *   https://kvvm.localhost:PORT (see handler/devvault/server.ts for why), so for such hosts only we hand the SDK
 *   an https.Agent whose lookup answers 127.0.0.1. Real vault hosts use the SDK's own agent.
 * - Every client of the process shares one TLS secure context per CA set (sharedSecureContext).
 * - A client may be held to a number of connections (maxConnections): requests beyond it wait for a free one.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import type { SecretClientOptions } from '@azure/keyvault-secrets';

export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

export const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  if (!isLoopbackName(hostname)) {
    callback(Object.assign(new Error(`kvvm: refusing to resolve non-loopback host ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
    return;
  }
  if (options.all) {
    (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
};

/** Node's roots + NODE_EXTRA_CA_CERTS (if readable) + the given PEMs; undefined when nothing extra is asked. */
export function trustedCas(extra: readonly string[] | undefined, env: Readonly<Record<string, string | undefined>>): string[] | undefined {
  if (!extra || extra.length === 0) return undefined;
  const fromEnv: string[] = [];
  const file = env['NODE_EXTRA_CA_CERTS'];
  if (file) {
    try {
      fromEnv.push(readFileSync(file, 'utf8'));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; do the same (no trust added).
    }
  }
  return [...rootCertificates, ...fromEnv, ...extra];
}

type TlsOptions = NonNullable<SecretClientOptions['tlsOptions']>;

export interface TransportOptions {
  tlsOptions?: TlsOptions;
  agent?: Agent;
}

/** Contexts made at once for different CA sets (a process uses one or two); past it they are made again. */
const MAX_CONTEXTS = 8;
const contexts = new Map<string, SecureContext>();

/**
 * One TLS secure context per trusted-CA set for the whole process. Without one, Node's TLS client builds a context
 * for every connection: ~0.15 ms of CPU with the default roots (each poll of a VM opens a connection or two), and
 * ~20 ms when `ca` lists the ~140 roots (Node's agent then also keys its socket pool by the whole CA text).
 * A context holds only trust (CA certificates); verification of the vault's certificate and name stays on in
 * every connection (tls.connect's rejectUnauthorized and checkServerIdentity defaults).
 */
function sharedSecureContext(ca: string[] | undefined): SecureContext {
  const key = ca === undefined ? '' : ca.join('\n');
  let context = contexts.get(key);
  if (context === undefined) {
    if (contexts.size >= MAX_CONTEXTS) contexts.clear();
    context = createSecureContext(ca === undefined ? {} : { ca });
    contexts.set(key, context);
  }
  return context;
}

/**
 * How long a kept-alive connection to the vault may sit idle before this side closes it. It also makes Node 20's
 * agent honour a server's `Keep-Alive: timeout=N` (closing at N less one second), which it skips when the agent has
 * no timeout of its own: a connection idle past the server's limit was then reused just as the server closed it,
 * and the request failed with ECONNRESET (a retry after the backoff's wait, and a new handshake). Measured against
 * the dev vault's 5 s: 450-1,100 resets per fleet run of 2,000 instances, on connections idle 5.4-6.2 s while the
 * busy process had not yet seen the server's close. The limit covers idle time only; a request in progress is
 * bounded by the reader's own time limit.
 */
const IDLE_CONNECTION_MS = 30_000;

export function transportFor(host: string, ca: string[] | undefined, maxConnections?: number): TransportOptions {
  const secureContext = sharedSecureContext(ca);
  const limit = maxConnections === undefined ? {} : { maxSockets: Math.max(1, Math.floor(maxConnections)) };
  if (isLoopbackName(host)) {
    return { agent: new Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS, lookup: loopbackLookup, secureContext, ...limit }) };
  }
  // The SDK makes the client's agent from these settings (spread into new https.Agent(), which takes a secureContext,
  // a timeout and maxSockets), so the client keeps the SDK's own agent and proxy handling (with HTTPS_PROXY set, the
  // proxy agent is used and these settings are not, as the SDK says in its log).
  return { tlsOptions: { secureContext, timeout: IDLE_CONNECTION_MS, ...limit } as unknown as TlsOptions };
}
