/**
 * Transport options for SecretClient: extra trusted CAs and RFC 6761 loopback resolution.
 *
 * - Extra CAs are ADDED to Node's bundled roots (tls.rootCertificates) and to NODE_EXTRA_CA_CERTS: an explicit
 *   `ca` replaces the default trust store, so passing only the dev CA would silently drop the public roots.
 *   Verification is never disabled.
 * - `*.localhost` names are loopback by RFC 6761 but glibc does not resolve them. The dev vault is served as
 *   https://kvvm.localhost:PORT (see handler/devvault/server.ts for why), so for such hosts only we hand the SDK
 *   an https.Agent whose lookup answers 127.0.0.1. Real vault hosts use the SDK's own agent untouched.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';

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

export interface TransportOptions {
  tlsOptions?: { ca: string[] };
  agent?: Agent;
}

export function transportFor(host: string, ca: string[] | undefined): TransportOptions {
  const out: TransportOptions = {};
  if (ca) out.tlsOptions = { ca };
  if (isLoopbackName(host)) {
    // One secure context for every connection: given `ca` itself, the agent would rebuild a context from ~140
    // roots for each new connection and key its socket pool by the whole CA text (measured: bench/README.md).
    out.agent = new Agent({ keepAlive: true, lookup: loopbackLookup, ...(ca ? { secureContext: createSecureContext({ ca }) } : {}) });
  }
  return out;
}
