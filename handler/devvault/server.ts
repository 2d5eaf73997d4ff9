/**
 * The local dev vault: an HTTPS Key Vault secrets endpoint plus an HTTP IMDS token endpoint, both on
 * 127.0.0.1 only. Used by tests, benchmarks and `kvvm demo`.
 *
 * Why the vault URL is https://kvvm.localhost:PORT and not https://localhost:PORT: the SDK's challenge-resource
 * verification requires the request host to END WITH "." + the challenge resource host
 * (@azure/keyvault-common verifyChallengeResource). "localhost" can never satisfy that, "kvvm.localhost" with
 * resource "https://localhost" does, so verification stays ON. *.localhost names are loopback by RFC 6761;
 * kvvm's vault client resolves them to 127.0.0.1 itself (see handler/vault/transport.ts) because glibc does not;
 * other clients need a hosts line, which `kvvm dev-vault` prints when the name does not resolve (command.ts).
 * `host` chooses another name: the resource (token audience) is always its parent domain.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createCa, issueCertificate, type IssuedCertificate } from './certFactory.js';
import { FaultQueue, type FaultSpec } from './faults.js';
import { handleImdsRequest, IMDS_TOKEN_PATH, TokenStore, type DevIdentities, type ImdsStats } from './imds.js';
import { FixedWindowLimiter, type RateLimit } from './rateLimiter.js';
import { handleVaultRequest, routeRequest, type VaultContext, type VaultStats } from './routes.js';
import { operateCertificate } from './certificates.js';
import { SecretState, type SetSecretOptions } from './state.js';

export interface DevVaultOptions {
  /** Vault HTTPS port; 0 (default) picks a free one. */
  port?: number;
  /** IMDS HTTP port; 0 (default) picks a free one. */
  imdsPort?: number;
  /** Persist secrets and the CA here so a restart keeps them; default a fresh temp dir removed on close. */
  stateDir?: string;
  rateLimit?: RateLimit;
  /** Added before every response (vault and IMDS). */
  latencyMs?: number;
  /** 0..1: share of authenticated vault requests answered 503. */
  faultRate?: number;
  tenantId?: string;
  /** First DNS label of the vault host (default "kvvm" → https://kvvm.localhost:PORT). */
  vaultName?: string;
  /** The whole vault host name (default `<vaultName>.localhost`); at least two labels, the parent is the resource. */
  host?: string;
  identities?: DevIdentities;
  /** Act like Azure Arc's HIMDS: challenge token requests with a key file written into this directory. */
  arcChallengeDir?: string;
  tokenLifetimeS?: number;
  now?: () => number;
  random?: () => number;
}

export interface DevVaultStats {
  vault: VaultStats;
  imds: ImdsStats;
}

export interface DevVault {
  vaultUrl: string;
  imdsEndpoint: string;
  /** Base of the IMDS endpoint (what AZURE_POD_IDENTITY_AUTHORITY_HOST expects). */
  imdsHost: string;
  caCertFile: string;
  caCertPem: string;
  stateDir: string;
  /** The vault's host name and its token audience (the parent domain). */
  host: string;
  resource: string;
  setSecret(name: string, value: string, options?: SetSecretOptions): string;
  /** Imports a certificate (base64 PFX or PEM text) as the certificates API does: returns the new version. */
  importCertificate(name: string, value: string, options?: { password?: string }): string;
  setVersionEnabled(name: string, version: string, enabled: boolean): void;
  deleteSecret(name: string): boolean;
  /** Make tokens of this principal ('system' or a client id) get 403 with this innererror code. */
  denyAccess(principal: string, innerCode?: 'ForbiddenByRbac' | 'ForbiddenByFirewall' | 'ForbiddenByPolicy'): void;
  allowAccess(principal: string): void;
  /** Fail the next N matching requests; `target: 'imds'` for the token endpoint. */
  injectFaults(spec: FaultSpec & { target?: 'vault' | 'imds' }): void;
  clearFaults(): void;
  stats(): DevVaultStats;
  /** Every bearer token the IMDS endpoint has issued (tests scan output files for leaked tokens). */
  issuedTokens(): string[];
  resetStats(): void;
  close(): Promise<void>;
}

const DEFAULT_TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const DEFAULT_RATE: RateLimit = { requests: 4000, windowMs: 10_000 };

function loadOrCreateTls(dir: string, host: string): { ca: IssuedCertificate; tls: { certPem: string; keyPem: string } } {
  const p = (f: string): string => join(dir, f);
  let ca: IssuedCertificate;
  try {
    const certPem = readFileSync(p('ca.pem'), 'utf8');
    ca = { certPem, keyPem: readFileSync(p('ca.key.pem'), 'utf8'), cert: new X509Certificate(certPem) };
  } catch {
    ca = createCa('kvvm dev vault CA');
    writeFileSync(p('ca.key.pem'), ca.keyPem, { mode: 0o600 });
    writeFileSync(p('ca.pem'), ca.certPem);
  }
  try {
    const certPem = readFileSync(p('tls.pem'), 'utf8');
    const cert = new X509Certificate(certPem);
    if (cert.checkIssued(ca.cert) && Date.parse(cert.validTo) > Date.now() + 86_400_000 && cert.checkHost(host) !== undefined) {
      return { ca, tls: { certPem, keyPem: readFileSync(p('tls.key.pem'), 'utf8') } };
    }
  } catch {
    // Missing or unreadable: issue a new one below.
  }
  const tls = issueCertificate({ issuer: ca, subjectCn: 'localhost', dnsNames: [...new Set(['localhost', 'kvvm.localhost', host, '127.0.0.1'])], days: 365 });
  writeFileSync(p('tls.key.pem'), tls.keyPem, { mode: 0o600 });
  writeFileSync(p('tls.pem'), tls.certPem);
  return { ca, tls };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startDevVault(options: DevVaultOptions = {}): Promise<DevVault> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const ownsStateDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'kvvm-devvault-'));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const vaultName = options.vaultName ?? 'kvvm';
  if (!/^[a-z0-9-]{1,24}$/.test(vaultName)) throw new Error(`kvvm dev-vault: invalid vault name "${vaultName}"`);
  const host = (options.host ?? `${vaultName}.localhost`).toLowerCase();
  if (!/^[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})+$/.test(host) || host.length > 253) {
    throw new Error(
      `kvvm dev-vault: --host "${host}" must be a DNS name of at least two labels, e.g. myvault.localhost (the SDK requires the vault host below its token resource)`,
    );
  }
  const { ca, tls } = loadOrCreateTls(stateDir, host);
  const latencyMs = options.latencyMs ?? 0;
  const faultRate = options.faultRate ?? 0;
  if (!(faultRate >= 0 && faultRate <= 1)) throw new Error('kvvm dev-vault: faultRate must be between 0 and 1');

  const tokens = new TokenStore();
  const vaultFaults = new FaultQueue();
  const imdsFaults = new FaultQueue();
  const freshVaultStats = (): VaultStats => ({ requests: 0, byRoute: {}, byStatus: {}, throttled: 0, unauthorized: 0, faultsInjected: 0, connections: 0, residenceMs: {} });
  const stats: DevVaultStats = { vault: freshVaultStats(), imds: { requests: 0, tokensIssued: 0, errors: 0 } };
  const state = new SecretState(join(stateDir, 'secrets.json'), now);
  const denied = new Map<string, string>();

  const httpsServer = createHttpsServer({ cert: tls.certPem, key: tls.keyPem });
  httpsServer.on('secureConnection', () => {
    stats.vault.connections += 1;
  });
  const imdsServer = createHttpServer();
  // Ports must be known before contexts are built (ids and nextLinks are absolute URLs).
  const port = await listen(httpsServer, options.port ?? 0);
  let imdsPort: number;
  try {
    imdsPort = await listen(imdsServer, options.imdsPort ?? 0);
  } catch (err) {
    await closeServer(httpsServer);
    throw err;
  }
  const vaultUrl = `https://${host}:${port}`;
  const resource = `https://${host.slice(host.indexOf('.') + 1)}`;
  const ctx: VaultContext = {
    vaultUrl,
    resource,
    tenantId: options.tenantId ?? DEFAULT_TENANT_ID,
    state,
    tokens,
    limiter: new FixedWindowLimiter(options.rateLimit ?? DEFAULT_RATE, now),
    faults: vaultFaults,
    faultRate,
    random,
    now,
    denied,
    stats: stats.vault,
    operations: new Map(),
  };
  const imdsCtx = {
    arcChallengeDir: options.arcChallengeDir,
    arcSecrets: new Set<string>(),
    identities: { systemAssigned: options.identities?.systemAssigned ?? true, userAssigned: options.identities?.userAssigned ?? [] },
    tokens,
    faults: imdsFaults,
    now,
    tokenLifetimeS: options.tokenLifetimeS ?? 86_400,
    get stats(): ImdsStats {
      return stats.imds;
    },
  };
  const delay = (): Promise<void> => (latencyMs > 0 ? new Promise((r) => setTimeout(r, latencyMs)) : Promise.resolve());

  httpsServer.on('request', (req, res) => {
    // The token endpoint is also served on the vault's port, so `kvvm dev-vault put --vault-url U` needs one URL.
    if (new URL(req.url ?? '/', vaultUrl).pathname === IMDS_TOKEN_PATH) {
      req.resume();
      void delay().then(() => handleImdsRequest(imdsCtx, req, res));
      return;
    }
    const received = performance.now();
    const routed = routeRequest(ctx, req);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void delay().then(() => {
        ctx.stats.requests += 1;
        const out = handleVaultRequest(ctx, req, Buffer.concat(chunks), routed);
        if ('fault' in out) {
          if (out.fault.kind === 'truncated') {
            const text = JSON.stringify({ value: 'x'.repeat(200), id: `${vaultUrl}/secrets/truncated` });
            res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
            res.write(text.slice(0, text.length >> 1), () => res.destroy());
          } else {
            res.destroy();
          }
          return;
        }
        ctx.stats.byStatus[String(out.status)] = (ctx.stats.byStatus[String(out.status)] ?? 0) + 1;
        if (out.status === 429) ctx.stats.throttled += 1;
        if (out.status === 401) ctx.stats.unauthorized += 1;
        const text = out.body === undefined ? '' : JSON.stringify(out.body);
        const send = (): void => {
          if (res.destroyed) return; // the client gave up while an injected delay held the reply
          res.writeHead(out.status, {
            'Content-Type': 'application/json; charset=utf-8',
            'Content-Length': Buffer.byteLength(text),
            'x-ms-keyvault-service-version': '1.9.0.0-kvvm-dev',
            ...out.headers,
          });
          res.end(text);
          const residence = ctx.stats.residenceMs;
          residence[routed.route] = (residence[routed.route] ?? 0) + (performance.now() - received);
        };
        if (out.delayMs !== undefined && out.delayMs > 0) setTimeout(send, out.delayMs).unref();
        else send();
      });
    });
  });
  imdsServer.on('request', (req, res) => {
    req.resume();
    void delay().then(() => handleImdsRequest(imdsCtx, req, res));
  });

  let closed = false;
  return {
    vaultUrl,
    imdsEndpoint: `http://127.0.0.1:${imdsPort}${IMDS_TOKEN_PATH}`,
    imdsHost: `http://127.0.0.1:${imdsPort}`,
    caCertFile: join(stateDir, 'ca.pem'),
    caCertPem: ca.certPem,
    stateDir,
    host,
    resource,
    setSecret: (name, value, opts) => state.set(name, value, opts).version,
    importCertificate: (name, value, opts) => {
      const reply = operateCertificate(ctx, 'importCertificate', ['certificates', name, 'import'], new URL(vaultUrl), { value, pwd: opts?.password });
      const body = reply.body as { id?: string; error?: { message?: string } };
      if (reply.status !== 200 || body.id === undefined) throw new Error(`kvvm dev-vault: cannot import ${name}: ${body.error?.message ?? reply.status}`);
      return body.id.slice(body.id.lastIndexOf('/') + 1);
    },
    setVersionEnabled: (name, version, enabled) => {
      if (!state.update(name, version, { enabled })) throw new Error(`kvvm dev-vault: no version ${version} of ${name}`);
    },
    deleteSecret: (name) => state.delete(name) !== undefined,
    denyAccess: (principal, innerCode = 'ForbiddenByRbac') => void denied.set(principal, innerCode),
    allowAccess: (principal) => void denied.delete(principal),
    injectFaults: ({ target, ...spec }) => (target === 'imds' ? imdsFaults : vaultFaults).add(target === 'imds' ? { ...spec, route: 'imds' } : spec),
    clearFaults: () => {
      vaultFaults.clear();
      imdsFaults.clear();
    },
    stats: () => structuredClone(stats),
    issuedTokens: () => tokens.all(),
    resetStats: () => {
      Object.assign(stats.vault, freshVaultStats());
      Object.assign(stats.imds, { requests: 0, tokensIssued: 0, errors: 0 });
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([closeServer(httpsServer), closeServer(imdsServer)]);
      if (ownsStateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
