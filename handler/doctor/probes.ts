/**
 * Network probes for `kvvm doctor`, one layer at a time so a failure names the layer: DNS, TCP (directly or
 * through an HTTPS_PROXY CONNECT tunnel), TLS (verified against Node's roots plus any extra CA; never disabled),
 * then an unauthenticated HTTPS GET whose 401 challenge names the token audience and whose Date header gives
 * the vault's clock. The managed-identity endpoint is probed with the same request the handler makes.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { identityGet } from '../vault/identityHttp.js';
import { isLoopbackName } from '../vault/transport.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ProxyChoice {
  /** The proxy URL used for this host, or undefined for a direct connection. */
  proxy: URL | undefined;
  /** Why: "HTTPS_PROXY", "NO_PROXY matches", "no proxy variables". */
  reason: string;
}

function envVar(env: Env, name: string): string | undefined {
  return env[name] ?? env[name.toLowerCase()];
}

/** Proxy URL for display: credentials removed. */
export function redactProxy(value: string): string {
  try {
    const u = new URL(value);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

/** NO_PROXY semantics of curl and the Azure SDK: "*", exact host, ".suffix" or "suffix" matches subdomains, host:port. */
export function noProxyMatches(host: string, port: number, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.toLowerCase();
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.includes(']')) {
      if (Number(m[2]) !== port) continue;
      entry = m[1] ?? '';
    }
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (h.endsWith(entry) || h === entry.slice(1)) return true;
    } else if (h === entry || h.endsWith('.' + entry)) return true;
  }
  return false;
}

export function proxyFor(host: string, port: number, env: Env): ProxyChoice {
  const value = envVar(env, 'HTTPS_PROXY');
  if (!value) return { proxy: undefined, reason: 'no HTTPS_PROXY' };
  if (noProxyMatches(host, port, envVar(env, 'NO_PROXY'))) return { proxy: undefined, reason: 'NO_PROXY matches' };
  try {
    return { proxy: new URL(value.includes('://') ? value : `http://${value}`), reason: 'HTTPS_PROXY' };
  } catch {
    return { proxy: undefined, reason: 'HTTPS_PROXY is not a URL (ignored)' };
  }
}

export function proxySummary(env: Env): { httpsProxy: string | undefined; noProxy: string | undefined } {
  const p = envVar(env, 'HTTPS_PROXY');
  return { httpsProxy: p ? redactProxy(p) : undefined, noProxy: envVar(env, 'NO_PROXY') };
}

export class ProbeError extends Error {
  constructor(
    readonly layer: 'dns' | 'tcp' | 'proxy' | 'tls' | 'http',
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : 'ERROR';
}

export async function resolveHost(host: string): Promise<string[]> {
  if (isLoopbackName(host)) return ['127.0.0.1']; // RFC 6761, as the vault client does
  try {
    const all = await lookup(host, { all: true });
    return all.map((a) => a.address);
  } catch (err) {
    throw new ProbeError('dns', codeOf(err), `${host} does not resolve (${codeOf(err)})`);
  }
}

function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  const target = isLoopbackName(host) ? '127.0.0.1' : host;
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: target, port });
    s.setTimeout(timeoutMs, () => s.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    s.once('connect', () => {
      s.setTimeout(0);
      resolve(s);
    });
    s.once('error', (err) => reject(new ProbeError('tcp', codeOf(err), `TCP connection to ${host}:${port} failed (${codeOf(err)})`)));
  });
}

/** A TCP socket to host:port, through an HTTP CONNECT tunnel when a proxy applies. */
export async function openTcp(host: string, port: number, proxy: URL | undefined, timeoutMs: number): Promise<Socket> {
  if (!proxy) return connectTcp(host, port, timeoutMs);
  const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  let s: Socket;
  try {
    s = await connectTcp(proxy.hostname, proxyPort, timeoutMs);
  } catch (err) {
    throw new ProbeError('proxy', codeOf(err), `the proxy ${redactProxy(proxy.toString())} is not reachable (${codeOf(err)})`);
  }
  const auth = proxy.username
    ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n`
    : '';
  s.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}\r\n`);
  const head = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        s.off('data', onData);
        resolve(buf.slice(0, end));
      }
    };
    s.on('data', onData);
    s.once('error', (err) => reject(new ProbeError('proxy', codeOf(err), `the proxy closed the tunnel (${codeOf(err)})`)));
    s.once('end', () => reject(new ProbeError('proxy', 'ECONNRESET', 'the proxy closed the connection')));
  });
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
  if (status !== '200') {
    s.destroy();
    throw new ProbeError('proxy', `HTTP_${status ?? '?'}`, `the proxy refused CONNECT ${host}:${port} (${head.split('\r\n')[0] ?? ''})`);
  }
  return s;
}

export function startTls(socket: Socket, host: string, ca: string[] | undefined, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const options: ConnectionOptions = { socket, host, ...(ca ? { ca } : {}) };
    // SNI carries DNS names only; the certificate is checked against `host` either way.
    if (isIP(host) === 0) options.servername = host;
    const t = tlsConnect(options);
    t.setTimeout(timeoutMs, () => t.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })));
    t.once('secureConnect', () => {
      t.setTimeout(0);
      resolve(t);
    });
    t.once('error', (err) => reject(new ProbeError('tls', codeOf(err), `TLS to ${host} failed: ${codeOf(err)}`)));
  });
}

export interface HttpHead {
  status: number;
  headers: Map<string, string>;
}

/** One HTTP/1.1 GET over an open (TLS) socket; only the status line and headers are kept, the body is dropped. */
export function getHead(socket: TLSSocket, host: string, port: number, path: string, timeoutMs: number): Promise<HttpHead> {
  return new Promise((resolve, reject) => {
    let buf = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error('no HTTP answer'), { code: 'ETIMEDOUT' })));
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.slice(0, end).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      socket.destroy();
      resolve({ status, headers });
    });
    socket.once('error', (err) => reject(new ProbeError('http', codeOf(err), `no HTTP answer from ${host} (${codeOf(err)})`)));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${port === 443 ? host : `${host}:${port}`}\r\nUser-Agent: kvvm-doctor\r\nAccept: application/json\r\nConnection: close\r\n\r\n`);
  });
}

/** resource="…" (or scope="…/.default") from a Key Vault bearer challenge. */
export function challengeResource(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const res = /resource="([^"]+)"/i.exec(header)?.[1];
  if (res) return res;
  const scope = /scope="([^"]+)"/i.exec(header)?.[1];
  return scope?.replace(/\/\.default$/, '');
}

export interface ImdsAnswer {
  status: number;
  body: string;
}

/** GET the token endpoint exactly as the handler does (the same request code: Metadata: true, no proxy, no redirects). */
export async function imdsGet(url: URL, timeoutMs: number): Promise<ImdsAnswer> {
  try {
    const answer = await identityGet(url, { headers: { Metadata: 'true' }, timeoutMs });
    return { status: answer.status, body: answer.body };
  } catch (err) {
    throw new ProbeError('tcp', codeOf(err), `${url.host} did not answer (${codeOf(err)})`);
  }
}
